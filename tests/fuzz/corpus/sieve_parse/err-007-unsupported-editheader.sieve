require "editheader";
keep;
