require ["vacation"];
vacation text:
I am away.
.
vacation2;
