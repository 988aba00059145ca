if true { keep }
