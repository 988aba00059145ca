if header :comparator "i;nonexistent" "subject" "x" { keep; }
