require "fileinto";
frobnicate "x";
