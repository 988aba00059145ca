if anyof ("string") { keep; }
