/**
 * Just enough of sed's and awk's languages for the floor to ask "does this program run the
 * text it reads as a command?" — GNU sed's `e` command and `s///e` flag, awk's `system()`,
 * `print | cmd` and `cmd | getline`. Each scanner is one linear pass over the program text.
 */

// ---------------------------------------------------------------------------------------------
// sed

/** sed commands that take no argument. */
const SED_SIMPLE = new Set(['=', 'd', 'D', 'g', 'G', 'h', 'H', 'n', 'N', 'p', 'P', 'x', 'z', 'F']);
/** sed commands whose argument (a file name or text) runs to the end of the line. */
const SED_TO_EOL = new Set(['r', 'R', 'w', 'W']);
/** sed commands whose label or number runs to `;` or the end of the line. */
const SED_TO_SEMICOLON = new Set(['b', 't', 'T', ':', 'q', 'Q', 'l', 'L', 'v']);
const SED_S_FLAGS = /[gpiImMe0-9]/;

/** What a sed script does with the pattern space, as far as the floor cares. */
export type SedVerdict = 'runs-input' | 'unknown' | undefined;

/**
 * Scans a GNU sed script. Returns `runs-input` when an `e` command without a command of its
 * own (it runs the pattern space) or an `s` command with the `e` flag (it runs the result) is
 * found; `unknown` when the script is not one the scanner can read (sed would likely reject it,
 * but the floor errs toward denying); undefined otherwise. `e COMMAND` runs a fixed command,
 * which the raw-text checks see; it is not the input.
 */
export function sedRunsInput(script: string): SedVerdict {
  const n = script.length;
  let i = 0;
  const skipBlanks = (): void => {
    while (i < n && (script[i] === ' ' || script[i] === '\t')) i++;
  };
  const toEol = (): void => {
    while (i < n && script[i] !== '\n') i++;
  };
  // Reads a delimited part (`/re/`, the parts of `s` and `y`); false when it never closes. In a
  // regular expression a bracket expression (`[/]`, `[]a]`, `[[:alpha:]]`) may hold the delimiter.
  const delimited = (delimiter: string, regex: boolean): boolean => {
    for (; i < n; i++) {
      const c = script[i];
      if (c === '\\') i++;
      else if (c === delimiter) {
        i++;
        return true;
      } else if (c === '\n' && delimiter !== '\n') return false;
      else if (c === '[' && regex && !bracket()) return false;
    }
    return false;
  };
  // At a `[`: moves to its closing `]`; false when the line ends first.
  const bracket = (): boolean => {
    let j = i + 1;
    if (script[j] === '^') j++;
    if (script[j] === ']') j++;
    for (; j < n && script[j] !== '\n'; j++) {
      const c = script[j];
      if (c === '[' && (script[j + 1] === ':' || script[j + 1] === '.' || script[j + 1] === '=')) {
        const close = script.indexOf(`${script[j + 1] as string}]`, j + 2);
        const eol = script.indexOf('\n', j + 2);
        if (close === -1 || (eol !== -1 && eol < close)) return false;
        j = close + 1;
      } else if (c === ']') {
        i = j;
        return true;
      }
    }
    return false;
  };
  const address = (): boolean => {
    const c = script[i];
    if (c === undefined) return true;
    if (c === '/' || c === '\\') {
      let delimiter = '/';
      if (c === '\\') {
        delimiter = script[i + 1] ?? '';
        if (delimiter === '' || delimiter === '\n') return false;
        i++;
      }
      i++;
      if (!delimited(delimiter, true)) return false;
      while (i < n && (script[i] === 'I' || script[i] === 'M')) i++;
      return true;
    }
    if (c === '$') {
      i++;
      return true;
    }
    if (c === '+' || c === '~' || (c >= '0' && c <= '9')) {
      i++;
      while (i < n && /[0-9~]/.test(script[i] as string)) i++;
      return true;
    }
    return true;
  };
  while (i < n) {
    const c = script[i] as string;
    if (c === ' ' || c === '\t' || c === '\n' || c === ';' || c === '}') {
      i++;
      continue;
    }
    if (c === '#') {
      toEol();
      continue;
    }
    if (!address()) return 'unknown';
    skipBlanks();
    if (script[i] === ',') {
      i++;
      skipBlanks();
      if (!address()) return 'unknown';
      skipBlanks();
    }
    while (script[i] === '!' || script[i] === ' ' || script[i] === '\t') i++;
    const command = script[i];
    if (command === undefined) return 'unknown';
    i++;
    if (command === '{') continue;
    if (command === 'e') {
      skipBlanks();
      const next = script[i];
      if (next === undefined || next === '\n' || next === ';' || next === '}') return 'runs-input';
      toEol();
      continue;
    }
    if (command === 's' || command === 'y') {
      const delimiter = script[i];
      if (delimiter === undefined || delimiter === '\n' || delimiter === '\\') return 'unknown';
      i++;
      if (!delimited(delimiter, command === 's') || !delimited(delimiter, false)) return 'unknown';
      if (command === 'y') continue;
      while (i < n && SED_S_FLAGS.test(script[i] as string)) {
        if (script[i] === 'e') return 'runs-input';
        i++;
      }
      // `w FILE` as the last flag takes the rest of the line.
      if (script[i] === 'w') toEol();
      continue;
    }
    if (command === 'a' || command === 'i' || command === 'c') {
      // Text to the end of the line, and on while lines end in a backslash.
      for (; i < n; i++) {
        if (script[i] === '\\') i++;
        else if (script[i] === '\n') break;
      }
      continue;
    }
    if (SED_TO_EOL.has(command)) {
      toEol();
      continue;
    }
    if (SED_TO_SEMICOLON.has(command)) {
      while (i < n && script[i] !== ';' && script[i] !== '\n') i++;
      continue;
    }
    if (SED_SIMPLE.has(command)) continue;
    return 'unknown';
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// awk

type AwkToken =
  | { readonly kind: 'string'; readonly value: string }
  | { readonly kind: 'word'; readonly value: string }
  | { readonly kind: 'operand' }
  | { readonly kind: 'pipe' }
  | { readonly kind: 'op'; readonly value: string };

/** Keywords after which a `/` starts a regular expression, not a division. */
const AWK_REGEX_AFTER = new Set(['print', 'printf', 'return', 'in', 'case', 'getline']);
const AWK_WORD = /[A-Za-z_0-9]/;

/** Splits an awk program into the few kinds of token the checks need; strings and regexes are read whole. */
function awkTokens(program: string): AwkToken[] {
  const tokens: AwkToken[] = [];
  const n = program.length;
  const regexAllowed = (): boolean => {
    const last = tokens.at(-1);
    if (last === undefined) return true;
    if (last.kind === 'op') return last.value !== ')' && last.value !== ']';
    if (last.kind === 'word') return AWK_REGEX_AFTER.has(last.value);
    return last.kind === 'pipe';
  };
  for (let i = 0; i < n; ) {
    const c = program[i] as string;
    if (c === ' ' || c === '\t' || c === '\r') {
      i++;
    } else if (c === '\\' && program[i + 1] === '\n') {
      i += 2;
    } else if (c === '#') {
      while (i < n && program[i] !== '\n') i++;
    } else if (c === '"') {
      let value = '';
      for (i++; i < n && program[i] !== '"'; i++) {
        if (program[i] === '\\' && i + 1 < n) i++;
        value += program[i] as string;
      }
      i++;
      tokens.push({ kind: 'string', value });
    } else if (c === '/' && regexAllowed()) {
      let inClass = false;
      for (i++; i < n; i++) {
        const r = program[i];
        if (r === '\\') i++;
        else if (r === '[') inClass = true;
        else if (r === ']') inClass = false;
        else if ((r === '/' && !inClass) || r === '\n') break;
      }
      i++;
      tokens.push({ kind: 'operand' });
    } else if (c === '$') {
      i++;
      tokens.push({ kind: 'operand' });
    } else if (AWK_WORD.test(c)) {
      const start = i;
      while (i < n && AWK_WORD.test(program[i] as string)) i++;
      tokens.push({ kind: 'word', value: program.slice(start, i) });
    } else if (c === '|' && program[i + 1] === '|') {
      i += 2;
      tokens.push({ kind: 'op', value: '||' });
    } else if (c === '|') {
      i += program[i + 1] === '&' ? 2 : 1;
      tokens.push({ kind: 'pipe' });
    } else {
      i++;
      tokens.push({ kind: 'op', value: c === '\n' ? ';' : c });
    }
  }
  return tokens;
}

/** Tokens that end a `print | "cmd"` statement. */
const AWK_STATEMENT_END = new Set([';', '}', ')', ',']);

/**
 * How an awk program may run a command made from what it reads: `system(expr)` with anything
 * but one string literal, `expr | getline` with anything but a string literal before the pipe,
 * `print … | expr` with anything but one string literal after it, and `print … | "cmd"` where
 * the fixed command is judged by `pipesIntoShell` (`print | "sh"` feeds the input to a shell).
 * A fixed command of `system("sh")` or `"sh" | getline` inherits awk's standard input, the
 * pipe: `readsStdin` says whether it is a shell or interpreter that reads its program there.
 * Returns a phrase for the reason, or undefined.
 */
export function awkRunsInput(program: string, pipesIntoShell: (command: string) => boolean, readsStdin: (command: string) => boolean): string | undefined {
  const tokens = awkTokens(program);
  for (let k = 0; k < tokens.length; k++) {
    const token = tokens[k] as AwkToken;
    if (token.kind === 'word' && token.value === 'system') {
      const open = tokens[k + 1];
      const argument = tokens[k + 2];
      const close = tokens[k + 3];
      const fixed = open?.kind === 'op' && open.value === '(' && argument?.kind === 'string' && close?.kind === 'op' && close.value === ')';
      if (!fixed) return 'system() runs a command built from what awk reads';
      if (readsStdin(argument.value)) return `system(${JSON.stringify(argument.value)}) starts a shell or interpreter that reads its program from the pipe`;
      continue;
    }
    if (token.kind !== 'pipe') continue;
    const next = tokens[k + 1];
    if (next?.kind === 'word' && next.value === 'getline') {
      const before = tokens[k - 1];
      const beforeThat = tokens[k - 2];
      // `"cmd" | getline` runs a fixed command; `$0 | getline` and `"cmd " $1 | getline` do not.
      const fixed = before?.kind === 'string' && (beforeThat === undefined || beforeThat.kind === 'op' || beforeThat.kind === 'pipe' || (beforeThat.kind === 'word' && AWK_REGEX_AFTER.has(beforeThat.value)));
      if (!fixed) return '`| getline` runs a command built from what awk reads';
      if (readsStdin(before.value)) return `\`${JSON.stringify(before.value)} | getline\` starts a shell or interpreter that reads its program from the pipe`;
      continue;
    }
    const after = tokens[k + 2];
    const fixed = next?.kind === 'string' && (after === undefined || (after.kind === 'op' && AWK_STATEMENT_END.has(after.value)));
    if (!fixed) return '`print | …` pipes into a command built from what awk reads';
    if (pipesIntoShell(next.value)) return `\`print | ${JSON.stringify(next.value)}\` feeds what awk reads to a shell or interpreter`;
  }
  return undefined;
}
