if header "subject" { keep; }
