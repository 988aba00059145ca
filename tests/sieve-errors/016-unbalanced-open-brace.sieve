if true {
  keep;

