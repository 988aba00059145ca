keep;
elsif true { keep; }
