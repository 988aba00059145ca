require "fileinto";
fileinto "Inbox;
keep;
