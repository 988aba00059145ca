require "fileinto";
if true {
		fileinot "x";
}
