require ["fileinto",];
