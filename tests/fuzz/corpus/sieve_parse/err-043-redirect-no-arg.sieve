redirect;
