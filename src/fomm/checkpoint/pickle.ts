/**
 * A strict pickle reader for PyTorch state dicts. It never executes anything: it builds plain JS
 * values, and knows only the handful of globals a checkpoint needs (OrderedDict, the tensor rebuild
 * functions, the storage classes). Any other global or object-building opcode is refused, because
 * a checkpoint is untrusted and pickle's general form runs arbitrary code.
 */
import type { ReenactError } from '../../errors.js';
import { badCheckpoint } from './errors.js';

/** Element types of torch storages, named after their torch.*Storage classes. */
export type StorageDtype =
  'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

export const STORAGE_CLASSES: ReadonlyMap<string, StorageDtype> = new Map([
  ['FloatStorage', 'float32'],
  ['DoubleStorage', 'float64'],
  ['HalfStorage', 'float16'],
  ['BFloat16Storage', 'bfloat16'],
  ['LongStorage', 'int64'],
  ['IntStorage', 'int32'],
  ['ShortStorage', 'int16'],
  ['CharStorage', 'int8'],
  ['ByteStorage', 'uint8'],
  ['BoolStorage', 'bool'],
]);

export const ELEMENT_SIZE: Readonly<Record<StorageDtype, number>> = {
  float32: 4,
  float64: 8,
  float16: 2,
  bfloat16: 2,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

/** A storage named by a persistent id: the container decides where its bytes are. */
export interface StorageRef {
  readonly kind: 'storage';
  readonly dtype: StorageDtype;
  readonly key: string;
  /** Element count of the storage as the pickle declares it. */
  readonly numel: number;
  /** Legacy view storages: element offset into the root storage `key`. */
  readonly viewOffset: number;
}

/** A tensor as the pickle describes it; its bytes are read only when asked for. */
export interface TensorRef {
  readonly kind: 'tensor';
  readonly storage: StorageRef;
  readonly offset: number;
  readonly shape: readonly number[];
  readonly stride: readonly number[];
}

/** A whitelisted global, held as a value until REDUCE applies it. */
export interface GlobalRef {
  readonly kind: 'global';
  readonly module: string;
  readonly name: string;
}

/** Resolves a persistent id tuple to a storage (the container format decides the meaning). */
export type PersistentLoad = (pid: PickleValue) => StorageRef;

export type PickleValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PickleValue[]
  | ReadonlyArray<PickleValue>
  | Map<PickleValue, PickleValue>
  | StorageRef
  | TensorRef
  | GlobalRef;

const MARK = Symbol('mark');
type StackItem = PickleValue | typeof MARK;

const ALLOWED_GLOBALS = new Set([
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_parameter',
  ...[...STORAGE_CLASSES.keys()].map((name) => `torch.${name}`),
]);

/** Deepest container nesting and largest memo a state dict plausibly needs; beyond is hostile. */
const MAX_STACK = 100_000;
const MAX_MEMO = 1_000_000;

const bad = (message: string, cause?: unknown): ReenactError => badCheckpoint(message, cause, 'unsupported');

export function isTuple(value: unknown): value is ReadonlyArray<PickleValue> {
  return Array.isArray(value) && Object.isFrozen(value);
}

/** The kind tag of a storage, tensor or global reference; undefined for every other value. */
function refKind(value: unknown): string | undefined {
  if (
    typeof value !== 'object' ||
    value === null ||
    Array.isArray(value) ||
    value instanceof Map ||
    value instanceof Uint8Array
  )
    return undefined;
  return (value as { kind?: string }).kind;
}

export function isTensor(value: unknown): value is TensorRef {
  return refKind(value) === 'tensor';
}

function isStorage(value: unknown): value is StorageRef {
  return refKind(value) === 'storage';
}

export function isGlobal(value: unknown): value is GlobalRef {
  return refKind(value) === 'global';
}

function describe(value: StackItem): string {
  if (value === MARK) return 'a mark';
  if (value === null) return 'None';
  if (isTuple(value)) return 'a tuple';
  if (Array.isArray(value)) return 'a list';
  if (value instanceof Map) return 'a dict';
  if (value instanceof Uint8Array) return 'bytes';
  if (isGlobal(value)) return `${value.module}.${value.name}`;
  if (isTensor(value)) return 'a tensor';
  if (isStorage(value)) return 'a storage';
  return typeof value;
}

/** Reads one pickle starting at `start`; returns its value and the offset just past STOP. */
export function readPickle(
  bytes: Uint8Array,
  start: number,
  persistentLoad: PersistentLoad,
): { value: PickleValue; end: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const stack: StackItem[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PickleValue>();
  let pos = start;

  const need = (n: number, what: string): void => {
    if (n < 0 || pos + n > bytes.length)
      throw bad(
        `Checkpoint ends in the middle of ${what} (offset ${pos}, needs ${n} bytes, ${bytes.length - pos} left).`,
      );
  };
  const u8 = (): number => {
    need(1, 'an opcode argument');
    return bytes[pos++]!;
  };
  const u16 = (): number => {
    need(2, 'an opcode argument');
    const v = view.getUint16(pos, true);
    pos += 2;
    return v;
  };
  const u32 = (): number => {
    need(4, 'an opcode argument');
    const v = view.getUint32(pos, true);
    pos += 4;
    return v;
  };
  const u64 = (what: string): number => {
    need(8, what);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(bytes.length)) throw bad(`${what} declares ${v} bytes, more than the whole file.`);
    return Number(v);
  };
  const take = (n: number, what: string): Uint8Array => {
    need(n, what);
    const out = bytes.subarray(pos, pos + n);
    pos += n;
    return out;
  };
  const text = (n: number, what: string): string => {
    const raw = take(n, what);
    try {
      return decoder.decode(raw);
    } catch (cause) {
      throw bad(`Checkpoint holds ${what} that is not valid UTF-8 (offset ${pos - n}).`, cause);
    }
  };
  const line = (what: string): string => {
    // Bounded search: a hostile file without newlines must not make this quadratic.
    const found = bytes.subarray(pos, pos + 257).indexOf(0x0a);
    const end = pos + found;
    if (found < 0) throw bad(`Checkpoint ends in the middle of ${what} (offset ${pos}).`);
    const s = String.fromCharCode(...bytes.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const push = (value: PickleValue): void => {
    if (stack.length >= MAX_STACK) throw bad(`Checkpoint pickle nests deeper than ${MAX_STACK} values.`);
    stack.push(value);
  };
  const pop = (what: string): PickleValue => {
    const floor = marks.length ? marks[marks.length - 1]! : 0;
    if (stack.length <= floor)
      throw bad(`Checkpoint pickle is malformed: ${what} finds an empty stack (offset ${pos - 1}).`);
    return stack.pop() as PickleValue;
  };
  const top = (what: string): PickleValue => {
    const floor = marks.length ? marks[marks.length - 1]! : 0;
    if (stack.length <= floor)
      throw bad(`Checkpoint pickle is malformed: ${what} finds an empty stack (offset ${pos - 1}).`);
    return stack[stack.length - 1] as PickleValue;
  };
  const popMark = (what: string): PickleValue[] => {
    const at = marks.pop();
    if (at === undefined) throw bad(`Checkpoint pickle is malformed: ${what} without a mark (offset ${pos - 1}).`);
    return stack.splice(at) as PickleValue[];
  };
  const memoPut = (index: number): void => {
    if (memo.size >= MAX_MEMO && !memo.has(index)) throw bad('Checkpoint pickle memoizes too many values.');
    memo.set(index, top('a memo write'));
  };
  const memoGet = (index: number): void => {
    const value = memo.get(index);
    if (value === undefined)
      throw bad(`Checkpoint pickle reads memo slot ${index}, which was never written (offset ${pos}).`);
    push(value);
  };
  const tuple = (items: PickleValue[]): ReadonlyArray<PickleValue> => Object.freeze(items);
  const list = (value: PickleValue, what: string): PickleValue[] => {
    if (!Array.isArray(value) || isTuple(value))
      throw bad(`Checkpoint pickle applies ${what} to ${describe(value)}, not a list.`);
    return value;
  };
  const dict = (value: PickleValue, what: string): Map<PickleValue, PickleValue> => {
    if (!(value instanceof Map)) throw bad(`Checkpoint pickle applies ${what} to ${describe(value)}, not a dict.`);
    return value;
  };
  const setItems = (target: Map<PickleValue, PickleValue>, items: PickleValue[]): void => {
    if (items.length % 2) throw bad('Checkpoint pickle sets a dict item without a value.');
    for (let i = 0; i < items.length; i += 2) {
      const key = items[i]!;
      if (key instanceof Map || (Array.isArray(key) && !isTuple(key)))
        throw bad(`Checkpoint pickle uses ${describe(key)} as a dict key.`);
      target.set(key, items[i + 1]!);
    }
  };
  const global = (module: string, name: string): void => {
    const full = `${module}.${name}`;
    if (!ALLOWED_GLOBALS.has(full)) {
      throw bad(
        `Checkpoint refers to the Python global "${full}", which a model checkpoint has no need for; refusing to load it (it could run code).`,
      );
    }
    push({ kind: 'global', module, name });
  };

  for (;;) {
    if (pos >= bytes.length) throw bad(`Checkpoint ends in the middle of a pickle (offset ${pos}, no STOP opcode).`);
    const op = bytes[pos++]!;
    // One opcode a line with its name beside it, as the pickle format's table reads.
    // prettier-ignore
    switch (op) {
      case 0x80: { // PROTO
        const protocol = u8();
        if (protocol < 2 || protocol > 5) throw bad(`Checkpoint pickle uses protocol ${protocol}; only protocols 2 to 5 are read.`);
        break;
      }
      case 0x95: // FRAME: a length prefix for buffering, nothing to do
        u64('a pickle frame');
        break;
      case 0x2e: { // STOP
        if (stack.length !== 1 || marks.length) throw bad('Checkpoint pickle is malformed: STOP with leftover values on the stack.');
        return { value: stack[0] as PickleValue, end: pos };
      }
      case 0x28: // MARK
        if (marks.length >= MAX_STACK) throw bad(`Checkpoint pickle nests deeper than ${MAX_STACK} values.`);
        marks.push(stack.length);
        break;
      case 0x7d: push(new Map()); break; // EMPTY_DICT
      case 0x5d: push([]); break; // EMPTY_LIST
      case 0x29: push(tuple([])); break; // EMPTY_TUPLE
      case 0x74: push(tuple(popMark('TUPLE'))); break; // TUPLE
      case 0x85: push(tuple([pop('TUPLE1')])); break; // TUPLE1
      case 0x86: { const b = pop('TUPLE2'); const a = pop('TUPLE2'); push(tuple([a, b])); break; }
      case 0x87: { const c = pop('TUPLE3'); const b = pop('TUPLE3'); const a = pop('TUPLE3'); push(tuple([a, b, c])); break; }
      case 0x6c: push(popMark('LIST')); break; // LIST
      case 0x64: { const m = new Map<PickleValue, PickleValue>(); setItems(m, popMark('DICT')); push(m); break; } // DICT
      case 0x61: { const v = pop('APPEND'); list(top('APPEND'), 'APPEND').push(v); break; } // APPEND
      case 0x65: { const items = popMark('APPENDS'); list(top('APPENDS'), 'APPENDS').push(...items); break; } // APPENDS
      case 0x73: { const v = pop('SETITEM'); const k = pop('SETITEM'); setItems(dict(top('SETITEM'), 'SETITEM'), [k, v]); break; }
      case 0x75: { const items = popMark('SETITEMS'); setItems(dict(top('SETITEMS'), 'SETITEMS'), items); break; }
      case 0x4e: push(null); break; // NONE
      case 0x88: push(true); break; // NEWTRUE
      case 0x89: push(false); break; // NEWFALSE
      case 0x4a: { need(4, 'an int'); push(view.getInt32(pos, true)); pos += 4; break; } // BININT
      case 0x4b: push(u8()); break; // BININT1
      case 0x4d: push(u16()); break; // BININT2
      case 0x8a: push(longValue(take(u8(), 'a long'))); break; // LONG1
      case 0x8b: { const n = u32(); if (n > 1024) throw bad(`Checkpoint pickle holds a ${n}-byte integer.`); push(longValue(take(n, 'a long'))); break; } // LONG4
      case 0x47: { need(8, 'a float'); push(view.getFloat64(pos, false)); pos += 8; break; } // BINFLOAT (big endian)
      case 0x58: push(text(u32(), 'a string')); break; // BINUNICODE
      case 0x8c: push(text(u8(), 'a string')); break; // SHORT_BINUNICODE
      case 0x8d: push(text(u64('a string'), 'a string')); break; // BINUNICODE8
      case 0x55: push(String.fromCharCode(...take(u8(), 'a string'))); break; // SHORT_BINSTRING (latin-1)
      case 0x54: push(latin1(take(u32(), 'a string'))); break; // BINSTRING
      case 0x43: push(new Uint8Array(take(u8(), 'bytes'))); break; // SHORT_BINBYTES
      case 0x42: push(new Uint8Array(take(u32(), 'bytes'))); break; // BINBYTES
      case 0x8e: push(new Uint8Array(take(u64('bytes'), 'bytes'))); break; // BINBYTES8
      case 0x71: memoPut(u8()); break; // BINPUT
      case 0x72: memoPut(u32()); break; // LONG_BINPUT
      case 0x94: memoPut(memo.size); break; // MEMOIZE
      case 0x68: memoGet(u8()); break; // BINGET
      case 0x6a: memoGet(u32()); break; // LONG_BINGET
      case 0x30: pop('POP'); break; // POP
      case 0x31: popMark('POP_MARK'); break; // POP_MARK
      case 0x32: push(top('DUP')); break; // DUP
      case 0x63: { const module = line('a global name'); const name = line('a global name'); global(module, name); break; } // GLOBAL
      case 0x93: { // STACK_GLOBAL
        const name = pop('STACK_GLOBAL');
        const module = pop('STACK_GLOBAL');
        if (typeof module !== 'string' || typeof name !== 'string') throw bad('Checkpoint pickle is malformed: STACK_GLOBAL without two strings.');
        global(module, name);
        break;
      }
      case 0x51: push(persistentLoad(pop('BINPERSID'))); break; // BINPERSID
      case 0x52: { // REDUCE
        const args = pop('REDUCE');
        const callable = pop('REDUCE');
        push(reduce(callable, args));
        break;
      }
      case 0x62: { // BUILD
        const state = pop('BUILD');
        const target = top('BUILD');
        // OrderedDict state dicts carry a `_metadata` attribute (module versions): harmless, ignored.
        if (!(target instanceof Map) || !(state instanceof Map)) {
          throw bad(`Checkpoint pickle uses BUILD to set the state of ${describe(target)}; only dicts may carry attributes.`);
        }
        break;
      }
      default:
        throw bad(`Checkpoint pickle uses opcode ${opcodeName(op)} at offset ${pos - 1}, which a state dict never needs; refusing to load it.`);
    }
  }
}

/** The calls a state dict makes: OrderedDict() and the tensor rebuild functions, nothing else. */
function reduce(callable: PickleValue, args: PickleValue): PickleValue {
  if (!isGlobal(callable))
    throw bad(`Checkpoint pickle calls ${describe(callable)}, which is not a function it may call.`);
  if (!isTuple(args))
    throw bad(
      `Checkpoint pickle calls ${callable.module}.${callable.name} with ${describe(args)} instead of an argument tuple.`,
    );
  const full = `${callable.module}.${callable.name}`;
  switch (full) {
    case 'collections.OrderedDict':
      if (args.length !== 0)
        throw bad('Checkpoint pickle builds an OrderedDict from arguments; state dicts start empty.');
      return new Map();
    case 'torch._utils._rebuild_tensor':
    case 'torch._utils._rebuild_tensor_v2': {
      // (storage, storage_offset, size, stride[, requires_grad, backward_hooks[, metadata]])
      if (args.length < 4 || args.length > 7)
        throw bad(`Checkpoint pickle calls ${full} with ${args.length} arguments.`);
      const [storage, offset, shape, stride] = args;
      if (!isStorage(storage))
        throw bad(`Checkpoint pickle rebuilds a tensor from ${describe(storage ?? null)} instead of a storage.`);
      return {
        kind: 'tensor',
        storage,
        offset: count(offset, 'a tensor storage offset'),
        shape: counts(shape, 'a tensor size'),
        stride: counts(stride, 'a tensor stride'),
      };
    }
    case 'torch._utils._rebuild_parameter': {
      // (data, requires_grad, backward_hooks): a Parameter is its tensor for inference.
      const data = args[0];
      if (args.length !== 3 || !isTensor(data))
        throw bad('Checkpoint pickle rebuilds a parameter from something other than a tensor.');
      return data;
    }
    default:
      throw bad(`Checkpoint pickle calls ${full}, which only names a type; refusing to load it.`);
  }
}

function count(value: PickleValue | undefined, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw bad(
      `Checkpoint holds ${what} that is not a non-negative integer (${describe(value ?? null)}: ${String(value)}).`,
    );
  }
  return value;
}

function counts(value: PickleValue | undefined, what: string): number[] {
  if (!isTuple(value) || value.length > 16)
    throw bad(`Checkpoint holds ${what} that is not a tuple of at most 16 integers.`);
  return value.map((v) => count(v, what));
}

/** Little-endian two's complement, as LONG1/LONG4 store it; a number when it fits exactly. */
function longValue(raw: Uint8Array): number | bigint {
  if (raw.length === 0) return 0;
  let value = 0n;
  for (let i = raw.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(raw[i]!);
  if (raw[raw.length - 1]! & 0x80) value -= 1n << BigInt(raw.length * 8);
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
}

function latin1(raw: Uint8Array): string {
  let s = '';
  for (let i = 0; i < raw.length; i += 8192) s += String.fromCharCode(...raw.subarray(i, i + 8192));
  return s;
}

const OPCODE_NAMES: Record<number, string> = {
  0x69: 'INST',
  0x6f: 'OBJ',
  0x81: 'NEWOBJ',
  0x92: 'NEWOBJ_EX',
  0x82: 'EXT1',
  0x83: 'EXT2',
  0x84: 'EXT4',
  0x50: 'PERSID',
  0x49: 'INT',
  0x4c: 'LONG',
  0x46: 'FLOAT',
  0x53: 'STRING',
  0x56: 'UNICODE',
  0x70: 'PUT',
  0x67: 'GET',
  0x8f: 'EMPTY_SET',
  0x90: 'ADDITEMS',
  0x91: 'FROZENSET',
  0x96: 'BYTEARRAY8',
  0x97: 'NEXT_BUFFER',
  0x98: 'READONLY_BUFFER',
};

function opcodeName(op: number): string {
  const hex = `0x${op.toString(16).padStart(2, '0')}`;
  return OPCODE_NAMES[op] ? `${OPCODE_NAMES[op]} (${hex})` : hex;
}
