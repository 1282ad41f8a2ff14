// plugins-rules.js: the server's rules for plugin instance values
// (plugin/values.go: FieldSpec.check, describe, Field.where and
// ValidateValues), ported so that the Plugins page refuses a bad value
// with exactly the message the server gives for it. TestUIPlugins
// compares the two for a table of bad values: change both together.

/** goQuote writes s as Go's %q does (strconv.Quote) for the usual characters. */
export function goQuote(s) {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0);
    switch (ch) {
      case '"': out += '\\"'; continue;
      case "\\": out += "\\\\"; continue;
      case "\x07": out += "\\a"; continue;
      case "\b": out += "\\b"; continue;
      case "\f": out += "\\f"; continue;
      case "\n": out += "\\n"; continue;
      case "\r": out += "\\r"; continue;
      case "\t": out += "\\t"; continue;
      case "\v": out += "\\v"; continue;
    }
    if (c < 0x20 || c === 0x7f) out += "\\x" + c.toString(16).padStart(2, "0");
    else out += ch;
  }
  return out + '"';
}

const int64Min = -(2n ** 63n);
const int64Max = 2n ** 63n - 1n;

function characters(n) {
  return n === 1 ? "1 character" : `${n} characters`;
}

/**
 * check returns what is wrong with v as a value of fieldspec fs ("" when
 * nothing is), without repeating v.
 */
export function check(fs, v) {
  switch (fs.type) {
    case "int": {
      if (!/^[+-]?[0-9]+$/.test(v)) return "is not an integer";
      const n = BigInt(v);
      if (n < int64Min || n > int64Max) return "is not an integer";
      if (fs.min !== undefined && n < BigInt(fs.min)) return `is less than the minimum ${fs.min}`;
      if (fs.max !== undefined && n > BigInt(fs.max)) return `is greater than the maximum ${fs.max}`;
      break;
    }
    case "text":
    case "password": {
      const n = [...v].length;
      if (v.includes("\0")) return "contains a NUL character, which an environment variable cannot hold";
      if (fs.minlength !== undefined && n < fs.minlength) return `is ${characters(n)} long, shorter than the minimum length ${fs.minlength}`;
      if (fs.maxlength !== undefined && n > fs.maxlength) return `is ${characters(n)} long, longer than the maximum length ${fs.maxlength}`;
      break;
    }
    case "boolean":
      if (v !== "true" && v !== "false") return "is not a boolean; use true or false";
      break;
  }
  return "";
}

/** describe names a value in messages: quoted, except for passwords. */
export const describe = (fs, v) => (fs.type === "password" ? "value" : `value ${goQuote(v)}`);

/** where names a configuration field in messages: KEY ("Label"). */
export const where = (f) => `${f.key} (${goQuote(f.label)})`;

/**
 * problems checks values against the configuration fields as
 * ValidateValues does and returns {KEY: message} for the bad ones, each
 * message as the server writes it after `plugin "NAME": `.
 */
export function problems(fields, values) {
  const out = {};
  for (const f of fields) {
    const v = values[f.key] ?? "";
    if (v === "") {
      if (f.fieldspec.required) out[f.key] = `${where(f)}: is required; give a value`;
      continue;
    }
    const p = check(f.fieldspec, v);
    if (p) out[f.key] = `${where(f)}: ${describe(f.fieldspec, v)} ${p}`;
  }
  return out;
}

/**
 * serverProblems splits the server's refusal of an instance into
 * {KEY: message} (same form as problems) and the rest, joined.
 */
export function serverProblems(message) {
  const byKey = {};
  const rest = [];
  for (const line of message.replace(/^plugin instance not saved: /, "").split("\n")) {
    const m = /^values\.([A-Za-z_][A-Za-z0-9_]*): .*?: plugin "[^"]*": (.*)$/.exec(line);
    if (m) byKey[m[1]] = m[2];
    else rest.push(line);
  }
  return { byKey, rest: rest.join("\n") };
}
