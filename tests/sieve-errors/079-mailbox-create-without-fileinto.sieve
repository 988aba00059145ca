require "mailbox";
fileinto :create "x";
