require "subaddress";
if address :domainpart "from" "x" { keep; }
