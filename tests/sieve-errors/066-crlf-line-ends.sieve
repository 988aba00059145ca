require "fileinto";
keep;
nothing;
