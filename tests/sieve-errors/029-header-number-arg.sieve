if header "subject" 5 { keep; }
