keep :days 3;
