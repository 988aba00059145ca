keep;
/* this comment
never ends
