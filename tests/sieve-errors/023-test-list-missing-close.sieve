if anyof (true, false { keep; }
