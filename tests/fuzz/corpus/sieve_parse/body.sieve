require ["fileinto","body"];
if body :text :contains "café" { fileinto "text-cafe"; }
if body :text :contains "bold html & stuff" { fileinto "text-html2text"; }
if body :text :contains "<b>" { fileinto "text-htmltags"; }
if body :text :contains "binarystuff" { fileinto "text-binary"; }
if body :text :contains "preamble" { fileinto "text-preamble"; }
if body :content "text" :contains "<b>bold" { fileinto "content-html-raw"; }
if body :content "text/html" :contains "bold" { fileinto "content-html"; }
if body :content "text/plain" :contains "café" { fileinto "content-plain"; }
if body :content "application" :contains "binarystuff" { fileinto "content-app"; }
if body :content "" :contains "binarystuff" { fileinto "content-empty"; }
if body :content "multipart" :contains "preamble" { fileinto "content-multi-preamble"; }
if body :content "multipart" :contains "plain caf" { fileinto "content-multi-children"; }
if body :raw :contains "caf=E9" { fileinto "raw-qp"; }
if body :raw :contains "Content-Type: text/plain" { fileinto "raw-hdr"; }
if body :contains "café" { fileinto "default-cafe"; }
if body :content "text/plain" :matches "plain*" { fileinto "plain-matches-start"; }
