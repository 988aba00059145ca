if envelope "from" "a@b.c" { keep; }
