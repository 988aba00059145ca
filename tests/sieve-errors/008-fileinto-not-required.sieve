if true {
  fileinto "x";
}
