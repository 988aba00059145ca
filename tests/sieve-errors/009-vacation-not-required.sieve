vacation "away";
