/* leading
   comment */ bogus;
