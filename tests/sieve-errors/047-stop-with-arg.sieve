stop 1;
