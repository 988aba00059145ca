require ["fileinto","imap4flags","vacation","copy"];
if header :contains "subject" "hi" { fileinto :flags "\\Seen a" "Foo"; fileinto :copy "Bar"; addflag "x"; keep; redirect "a@b.c"; }
vacation :days 1 :subject "away" "I'm away";
