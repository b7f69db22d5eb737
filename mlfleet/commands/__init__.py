"""One module (or package) per command's orchestration: plan, execute, report."""
