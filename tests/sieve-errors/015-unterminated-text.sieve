require "reject";
reject text:
line one
line two
