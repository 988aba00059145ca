if allof () { keep; }
