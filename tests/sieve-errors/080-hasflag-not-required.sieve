if hasflag "\\Seen" { keep; }
