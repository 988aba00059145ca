require "enotify";
keep;
