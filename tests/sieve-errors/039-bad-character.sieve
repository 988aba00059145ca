keep;
$ discard;
