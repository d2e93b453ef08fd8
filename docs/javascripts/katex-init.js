// Render \[...\] and \(...\) (written by docs/hooks.py from the docstrings' math) with KaTeX.
document.addEventListener("DOMContentLoaded", () => {
  renderMathInElement(document.body, {
    delimiters: [{left: "\\[", right: "\\]", display: true},
                 {left: "\\(", right: "\\)", display: false}],
    throwOnError: false,
  });
});
