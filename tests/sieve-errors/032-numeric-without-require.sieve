if header :comparator "i;ascii-numeric" "x-num" "1" { keep; }
