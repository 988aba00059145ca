require "reject";
ereject "no";
