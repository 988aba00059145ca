if true {
  require "fileinto";
}
