// The sandbox's JavaScript prelude, evaluated once when the runtime is
// initialised (and so part of the snapshot). It receives the native functions,
// installs `console`, and returns the internals the Rust side drives: `setup`
// (per run: `args` and one async function per integration), `settle` (a call
// completed) and `track` (promise rejection bookkeeping).
(function (nativeStart, nativeWrite) {
  'use strict';

  const pending = new Map();
  const unhandled = new Map();

  // ---- console ----------------------------------------------------------

  function circularSafe() {
    const ancestors = [];
    return function (key, value) {
      if (typeof value === 'bigint') return value.toString();
      if (typeof value !== 'object' || value === null) return value;
      while (ancestors.length > 0 && ancestors[ancestors.length - 1] !== this) ancestors.pop();
      if (ancestors.includes(value)) return '[Circular]';
      ancestors.push(value);
      return value;
    };
  }

  function errorText(e) {
    const head = `${e.name || 'Error'}: ${e.message}`;
    const stack = typeof e.stack === 'string' ? e.stack.trimEnd() : '';
    return stack ? `${head}\n${stack}` : head;
  }

  function inspect(v) {
    switch (typeof v) {
      case 'string':
        return v;
      case 'undefined':
        return 'undefined';
      case 'function':
        return `[Function ${v.name || '(anonymous)'}]`;
      case 'symbol':
      case 'bigint':
      case 'number':
      case 'boolean':
        return String(v);
    }
    if (v === null) return 'null';
    if (v instanceof Error) return errorText(v);
    let text;
    try {
      text = JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? x.toString() : x));
    } catch (_) {
      try {
        text = JSON.stringify(v, circularSafe());
      } catch (_) {
        text = undefined;
      }
    }
    return text === undefined ? String(v) : text;
  }

  function writer(fd) {
    return function (...values) {
      nativeWrite(fd, values.map(inspect).join(' ') + '\n');
    };
  }

  const console = Object.freeze({
    log: writer(1),
    info: writer(1),
    debug: writer(1),
    warn: writer(2),
    error: writer(2),
  });
  Object.defineProperty(globalThis, 'console', { value: console, writable: true, configurable: true });
  delete globalThis.Javy;

  // ---- integration calls ------------------------------------------------

  function queryValue(v) {
    if (typeof v === 'string') return v;
    if (typeof v === 'object' && v !== null && !(v instanceof Date)) return JSON.stringify(v);
    return String(v);
  }

  function request(name, method, path, options) {
    const usage = `${name}(method, path, options)`;
    if (typeof method !== 'string') throw new TypeError(`${usage}: method must be a string`);
    if (typeof path !== 'string') throw new TypeError(`${usage}: path must be a string`);
    if (options === undefined || options === null) options = {};
    if (typeof options !== 'object') throw new TypeError(`${usage}: options must be an object`);

    const headers = [];
    let contentType = false;
    if (options.headers !== undefined && options.headers !== null) {
      if (typeof options.headers !== 'object') throw new TypeError(`${usage}: options.headers must be an object`);
      for (const [k, v] of Object.entries(options.headers)) {
        if (v === undefined || v === null) continue;
        headers.push(String(k), String(v));
        if (String(k).toLowerCase() === 'content-type') contentType = true;
      }
    }

    const query = [];
    if (options.query !== undefined && options.query !== null) {
      if (typeof options.query !== 'object') throw new TypeError(`${usage}: options.query must be an object`);
      for (const [k, v] of Object.entries(options.query)) {
        if (v === undefined || v === null) continue;
        if (Array.isArray(v)) {
          for (const x of v) if (x !== undefined && x !== null) query.push(k, queryValue(x));
        } else {
          query.push(k, queryValue(v));
        }
      }
    }

    let body = options.body;
    if (body === undefined || body === null) {
      body = undefined;
    } else if (typeof body === 'string') {
      // sent as-is
    } else if (body instanceof ArrayBuffer) {
      body = new Uint8Array(body);
    } else if (ArrayBuffer.isView(body)) {
      body = new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
    } else {
      body = JSON.stringify(body);
      if (body === undefined) throw new TypeError(`${usage}: options.body cannot be serialised as JSON`);
      if (!contentType) headers.push('content-type', 'application/json');
    }

    return new Promise((resolve, reject) => {
      const id = nativeStart(name, method, path, query, headers, body);
      pending.set(id, { resolve, reject, what: `${name}('${method}', '${path}')` });
    });
  }

  function integration(name) {
    const f = async function (method, path, options) {
      return request(name, method, path, options);
    };
    Object.defineProperty(f, 'name', { value: name });
    return Object.freeze(f);
  }

  function decode(kind, text, contentType, size) {
    switch (kind) {
      case 'null':
        return null;
      case 'json':
        try {
          return JSON.parse(text);
        } catch (_) {
          return text;
        }
      case 'binary':
        return { _type: 'base64', data: text, content_type: contentType, size };
      default:
        return text;
    }
  }

  function headerObject(flat) {
    const out = {};
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const k = flat[i].toLowerCase();
      out[k] = k in out ? `${out[k]}, ${flat[i + 1]}` : flat[i + 1];
    }
    return out;
  }

  // ---- what the Rust side calls -----------------------------------------

  function setup(integrations, argsJson) {
    Object.defineProperty(globalThis, 'args', {
      value: JSON.parse(argsJson),
      writable: true,
      configurable: true,
      enumerable: false,
    });
    for (const name of integrations) {
      Object.defineProperty(globalThis, name, {
        value: integration(name),
        writable: false,
        configurable: false,
        enumerable: false,
      });
    }
  }

  function settleOk(id, status, headers, kind, text, contentType, size) {
    const p = pending.get(id);
    if (p === undefined) return;
    pending.delete(id);
    const body = decode(kind, text, contentType, size);
    if (status >= 200 && status < 300) {
      p.resolve(body);
      return;
    }
    const e = new Error(`${p.what} returned HTTP ${status}`);
    e.status = status;
    e.body = body;
    e.headers = headerObject(headers);
    p.reject(e);
  }

  function settleErr(id, code, message, confirmationId) {
    const p = pending.get(id);
    if (p === undefined) return;
    pending.delete(id);
    const e = new Error(`${p.what} failed: ${message}`);
    e.code = code;
    // `confirmation_required`: the owner approves this id, then the
    // identical call passes once.
    if (confirmationId !== undefined && confirmationId !== null) e.confirmation_id = confirmationId;
    p.reject(e);
  }

  function track(promise, reason, handled) {
    if (handled) unhandled.delete(promise);
    else unhandled.set(promise, reason);
  }

  function firstUnhandled() {
    for (const [promise, reason] of unhandled) {
      unhandled.delete(promise);
      return [reason];
    }
    return undefined;
  }

  return Object.freeze({ setup, settleOk, settleErr, track, firstUnhandled });
})
