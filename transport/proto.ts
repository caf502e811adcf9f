// A gRPC service from our .proto files (proto/), read with protobufjs: what @grpc/proto-loader
// gives grpc-js, less its reflection descriptors. proto-loader builds a FileDescriptorProto of
// every file and every message on load (and imports protobufjs's descriptor extension to do it),
// which nobody here reads: 30 ms of every process that speaks gRPC (each executor, supervisor and
// CLI run), measured from import to client constructor, 141 → 111 ms.
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** How decoded messages look: proto-loader's options of the same names. */
export interface DecodeOptions {
  /** 64-bit fields as numbers (all our sizes fit in 2^53). */
  longs: NumberConstructor;
  enums: StringConstructor;
  /** Absent fields read as their defaults. */
  defaults: boolean;
  /** Each oneof's set field is named in a virtual field. */
  oneofs?: boolean;
}

/** proto/NAME, from the compiled tree (dist/transport → ../../proto) or from the sources. */
function protoPath(name: string): string {
  const compiled = fileURLToPath(new URL(`../../proto/${name}`, import.meta.url));
  return existsSync(compiled) ? compiled : fileURLToPath(new URL(`../proto/${name}`, import.meta.url));
}

/**
 * The client constructor (its `service` is the server's definition) of `service` (full name, e.g.
 * `redblue.v1.Executor`) in proto/`file`. Method keys are the proto's names, with their
 * lower-camel-case aliases as proto-loader gives them (`Hello` and `hello`).
 */
export function loadService(
  file: string,
  service: string,
  decode: DecodeOptions,
): grpc.ServiceClientConstructor {
  const root = new protobuf.Root();
  // Field names in lower camel case, as proto-loader's keepCase: false.
  root.loadSync(protoPath(file), { keepCase: false });
  root.resolveAll();
  const svc = root.lookupService(service);
  const definition: Record<string, grpc.MethodDefinition<object, object>> = {};
  for (const m of svc.methodsArray) {
    const req = m.resolvedRequestType!;
    const res = m.resolvedResponseType!;
    const serialize = (type: protobuf.Type) => (value: object) => {
      if (Array.isArray(value))
        throw new Error(`Failed to serialize message: expected a ${type.name}, got an array`);
      // A Buffer under Node (protobufjs writes into one), as grpc-js wants it.
      return type.encode(type.fromObject(value)).finish() as Buffer;
    };
    const deserialize = (type: protobuf.Type) => (bytes: Buffer) => type.toObject(type.decode(bytes), decode);
    definition[m.name] = {
      path: `/${service}/${m.name}`,
      requestStream: m.requestStream === true,
      responseStream: m.responseStream === true,
      requestSerialize: serialize(req),
      requestDeserialize: deserialize(req),
      responseSerialize: serialize(res),
      responseDeserialize: deserialize(res),
      originalName: m.name.charAt(0).toLowerCase() + m.name.slice(1),
    };
  }
  return grpc.makeGenericClientConstructor(definition, service.split('.').pop()!);
}
