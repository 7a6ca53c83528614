// Patterns in helm-unittest suites are Go regular expressions (RE2 syntax, DOCUMENT.md: matchRegex,
// failedTemplate.errorPattern, "https://pkg.go.dev/regexp/syntax"), matched unanchored
// (regexp.MatchString). JavaScript reads the common subset the same way; the RE2 pieces it spells
// differently are translated, and the ones it lacks are refused, so a pattern never means
// something else here than under the plugin.
export class PatternError extends Error {
  override name = "PatternError";
  /** True when the pattern is valid RE2 that this runner cannot translate (false: invalid). */
  readonly unsupported: boolean;
  constructor(message: string, unsupported = true) {
    super(message);
    this.unsupported = unsupported;
  }
}

export function goRegExp(pattern: string): RegExp {
  let src = pattern;
  let flags = "";
  // A leading flag group, e.g. (?i) or (?ms): JavaScript takes them as flags.
  const lead = /^\(\?([imsU]+)\)/.exec(src);
  if (lead) {
    if (lead[1]!.includes("U"))
      throw new PatternError(`pattern ${JSON.stringify(pattern)}: (?U) is not supported`);
    flags = [...new Set(lead[1]!)].join("");
    src = src.slice(lead[0].length);
  }
  if (/\(\?[imsU-]+[:)]/.test(src))
    throw new PatternError(
      `pattern ${JSON.stringify(pattern)}: inline flags are only supported at the start`,
    );
  if (/\[\[:\^?[a-z]+:\]\]|\\[pP]\{|\\Q|\\C/.test(src))
    throw new PatternError(
      `pattern ${JSON.stringify(pattern)}: POSIX classes, \\p{...}, \\Q...\\E and \\C are not supported by this runner`,
    );
  // RE2 names groups (?P<name>...); \A and \z are the text's start and end.
  src = src
    .replace(/\(\?P</g, "(?<")
    .replace(/\\A/g, "^")
    .replace(/\\z/g, "$(?![\\s\\S])");
  if (flags.includes("m") && /\\[Az]/.test(pattern))
    throw new PatternError(
      `pattern ${JSON.stringify(pattern)}: \\A or \\z together with (?m) is not supported`,
    );
  try {
    return new RegExp(src, flags);
  } catch (err) {
    throw new PatternError(`pattern ${JSON.stringify(pattern)}: ${(err as Error).message}`, false);
  }
}
