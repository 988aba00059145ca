require "fileinto";
reject "no";
