require "envelope";
if envelope :is "reply-to" "x" { keep; }
