require "fileinto";
if true { return; }
