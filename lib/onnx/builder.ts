/**
 * A small ONNX graph builder over `onnx-proto` 8.0.1 (protobufjs classes generated from ONNX 1.10, IR version 8):
 * initializers from typed arrays (stored as little-endian `raw_data`), nodes with typed attributes, typed graph
 * inputs and outputs, opset imports and `metadata_props`. Enough for opset 13 fp32 and int8 graphs; a graph may ask
 * for a later opset (the search encoder uses 17 for `LayerNormalization`).
 */
import { onnx } from 'onnx-proto';

/** ONNX element types used by recflow graphs. */
export const DType = {
  float: onnx.TensorProto.DataType.FLOAT,
  uint8: onnx.TensorProto.DataType.UINT8,
  int8: onnx.TensorProto.DataType.INT8,
  int32: onnx.TensorProto.DataType.INT32,
  int64: onnx.TensorProto.DataType.INT64,
} as const;
export type DType = (typeof DType)[keyof typeof DType];

/** The opset recflow graphs target unless a {@link GraphBuilder} asks for another. */
export const OPSET = 13;

/** Typed arrays an initializer may be built from (BigInt64Array for int64). */
export type TensorData = Float32Array | Int8Array | Uint8Array | Int32Array | BigInt64Array;

function dtypeOfData(data: TensorData): DType {
  if (data instanceof Float32Array) return DType.float;
  if (data instanceof Int8Array) return DType.int8;
  if (data instanceof Uint8Array) return DType.uint8;
  if (data instanceof Int32Array) return DType.int32;
  return DType.int64;
}

/** A node attribute, tagged with its ONNX type. */
export type Attr =
  | { kind: 'int'; value: number }
  | { kind: 'float'; value: number }
  | { kind: 'ints'; value: number[] }
  | { kind: 'string'; value: string }
  | { kind: 'tensor'; value: onnx.ITensorProto };

/** Attribute constructors: `{ axis: attr.int(1) }`. */
export const attr = {
  int: (value: number): Attr => ({ kind: 'int', value }),
  float: (value: number): Attr => ({ kind: 'float', value }),
  ints: (value: number[]): Attr => ({ kind: 'ints', value }),
  string: (value: string): Attr => ({ kind: 'string', value }),
  tensor: (value: onnx.ITensorProto): Attr => ({ kind: 'tensor', value }),
};

function toAttribute(name: string, a: Attr): onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  switch (a.kind) {
    case 'int':
      return { name, type: T.INT, i: a.value };
    case 'float':
      return { name, type: T.FLOAT, f: a.value };
    case 'ints':
      return { name, type: T.INTS, ints: a.value };
    case 'string':
      return { name, type: T.STRING, s: new TextEncoder().encode(a.value) };
    case 'tensor':
      return { name, type: T.TENSOR, t: a.value };
  }
}

/** A TensorProto from a typed array (raw little-endian bytes; x86 and ARM hosts are little-endian). */
export function tensor(name: string, dims: number[], data: TensorData): onnx.ITensorProto {
  const n = dims.reduce((a, b) => a * b, 1);
  if (n !== data.length) throw new Error(`tensor ${name}: dims ${dims.join('x')} hold ${n} values, got ${data.length}`);
  return {
    name,
    dims,
    dataType: dtypeOfData(data),
    rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  };
}

/** A graph input or output: element type and dims (numbers, or names for symbolic dims). */
export function valueInfo(name: string, elemType: DType, dims: Array<number | string>): onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

/**
 * Builds one graph: call {@link GraphBuilder.init} for weights, {@link GraphBuilder.op} for nodes (it returns the
 * output names), {@link GraphBuilder.input}/{@link GraphBuilder.output}, then {@link GraphBuilder.model}.
 */
export class GraphBuilder {
  private readonly nodes: onnx.INodeProto[] = [];
  private readonly initializers: onnx.ITensorProto[] = [];
  private readonly inputs: onnx.IValueInfoProto[] = [];
  private readonly outputs: onnx.IValueInfoProto[] = [];
  private readonly names = new Set<string>();
  private counter = 0;

  /**
   * @param name the graph's name
   * @param opset the default domain's opset version; @default {@link OPSET}
   */
  constructor(
    readonly name: string,
    readonly opset: number = OPSET,
  ) {}

  /** A fresh value name with a readable prefix. */
  fresh(prefix: string): string {
    let n: string;
    do n = `${prefix}_${this.counter++}`;
    while (this.names.has(n));
    this.names.add(n);
    return n;
  }

  private claim(name: string): string {
    if (this.names.has(name)) throw new Error(`graph ${this.name}: value name '${name}' used twice`);
    this.names.add(name);
    return name;
  }

  /** Add an initializer (a constant tensor); returns its name. */
  init(name: string, dims: number[], data: TensorData): string {
    this.initializers.push(tensor(this.claim(name), dims, data));
    return name;
  }

  /** Scalar or 1-D int64 constant as an initializer. */
  int64(name: string, values: number[], dims: number[] = [values.length]): string {
    return this.init(name, dims, BigInt64Array.from(values.map((v) => BigInt(v))));
  }

  /** Float constant as an initializer. */
  float(name: string, values: number[], dims: number[] = [values.length]): string {
    return this.init(name, dims, Float32Array.from(values));
  }

  /** Declare a graph input. */
  input(name: string, elemType: DType, dims: Array<number | string>): string {
    this.inputs.push(valueInfo(this.claim(name), elemType, dims));
    return name;
  }

  /** Declare a graph output (the value must be produced by a node). */
  output(name: string, elemType: DType, dims: Array<number | string>): void {
    this.outputs.push(valueInfo(name, elemType, dims));
  }

  /**
   * Add a node. `outputs` is a count (fresh names) or explicit names; an empty string in `inputs` is an omitted
   * optional input. Returns the output names.
   */
  op(
    opType: string,
    inputs: string[],
    outputs: number | string[] = 1,
    attrs: Record<string, Attr> = {},
    domain = '',
  ): string[] {
    const outs =
      typeof outputs === 'number'
        ? Array.from({ length: outputs }, () => this.fresh(opType.toLowerCase()))
        : outputs.map((o) => this.claim(o));
    this.nodes.push({
      opType,
      domain,
      name: this.fresh(`n_${opType}`),
      input: inputs,
      output: outs,
      attribute: Object.entries(attrs).map(([k, v]) => toAttribute(k, v)),
    });
    return outs;
  }

  /** {@link GraphBuilder.op} with one output, returned as a string. */
  op1(opType: string, inputs: string[], attrs: Record<string, Attr> = {}, outName?: string): string {
    return this.op(opType, inputs, outName ? [outName] : 1, attrs)[0] as string;
  }

  /** The finished model: IR version 8, the default domain at the builder's opset, string metadata. */
  model(metadata: Record<string, string>, producerVersion = '1'): onnx.ModelProto {
    return onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'recflow',
      producerVersion,
      opsetImport: [{ domain: '', version: this.opset }],
      metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
      graph: {
        name: this.name,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
    });
  }
}

/** Serialize a model to protobuf bytes. */
export function encodeModel(model: onnx.ModelProto): Uint8Array {
  return onnx.ModelProto.encode(model).finish();
}

/** Parse protobuf bytes into a model (for tests and tools reading metadata). */
export function decodeModel(bytes: Uint8Array): onnx.ModelProto {
  return onnx.ModelProto.decode(bytes);
}

/** `metadata_props` of a model as a plain object. */
export function metadataOf(model: onnx.IModelProto): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of model.metadataProps ?? []) if (p.key) out[p.key] = p.value ?? '';
  return out;
}
