require ["fileinto", "copy";
