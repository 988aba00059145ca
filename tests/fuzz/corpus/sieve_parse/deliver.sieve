require ["fileinto","imap4flags","vacation","mailbox","duplicate"];
if header :contains "subject" "hi" { fileinto :flags "\\Seen" "Lists.Caf&AOk-"; }
if duplicate { fileinto "Dups"; }
if mailboxexists "Lists.Café" { addflag "exists"; }
fileinto "Bad/Name";
keep;
