if isfoo "subject" "x" { keep; }
