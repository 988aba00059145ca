require "fileinto";

# rule:[one]
if header :contains "subject" "a"
{
	fileinto "A";
}
# rule:[two]
if header :contains "subject" "b"
{
	fileinto "B"
}
