// SPDX-License-Identifier: GPL-2.0-only
// A netlink dump runner for table reads: sends generic-netlink dump requests one after the other on a
// socket of its own, each as soon as the previous one's answer has ended (NLMSG_DONE or NLMSG_ERROR),
// and hands every byte received, in order, to a JavaScript callback in chunks of whole answers. It runs
// on a thread of its own, so the caller decodes one chunk while the kernel produces the next (on another
// CPU), and knows nothing of IPVS: the caller builds the requests and decodes the answers
// (src/ipvs/netlink/bulk.ts). This is ipvsadm's read pattern without a JavaScript callback, promise and
// buffer per datagram, which cost most of a 10,000-service listing.
#include <napi.h>

#include <errno.h>
#include <linux/netlink.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Chunk {
  std::vector<uint8_t> bytes;
  bool end = false;
  int err = 0;
  std::string what;
  uint32_t answered = 0;
};

// One run: its requests, its socket options, and the function that hands chunks to JavaScript.
struct Job {
  int protocol;
  std::vector<uint8_t> requests;
  int recvBuf;
  int readBuf;
  int timeoutMs;
  size_t chunkBytes;
  Napi::ThreadSafeFunction tsfn;
};

void Deliver(Napi::Env env, Napi::Function js, Chunk *c) {
  if (static_cast<napi_env>(env) == nullptr || js.IsEmpty()) {  // the environment is going away
    delete c;
    return;
  }
  try {
    if (!c->end) {
      auto *v = new std::vector<uint8_t>(std::move(c->bytes));
      js.Call({Napi::Buffer<uint8_t>::New(env, v->data(), v->size(),
                                          [](Napi::Env, uint8_t *, std::vector<uint8_t> *p) { delete p; }, v)});
    } else if (c->err) {
      Napi::Error e = Napi::Error::New(env, c->what + ": " + strerror(c->err));
      e.Set("errno", Napi::Number::New(env, c->err));
      e.Set("answered", Napi::Number::New(env, c->answered));
      js.Call({env.Null(), e.Value()});
    } else {
      js.Call({env.Null()});
    }
  } catch (const Napi::Error &) {
    // bulk.ts's handler does not throw; if it ever did, the error stays on the JavaScript side
  }
  delete c;
}

class Runner {
 public:
  explicit Runner(Job *job) : job_(job) {}

  void Run() {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, job_->protocol);
    if (fd < 0) {
      Fail(errno, "socket");
    } else {
      RunOn(fd);
      close(fd);
    }
    Flush();
    auto *end = new Chunk();
    end->end = true;
    end->err = err_;
    end->what = what_;
    end->answered = answered_;
    job_->tsfn.BlockingCall(end, Deliver);
    job_->tsfn.Release();
    delete job_;
  }

 private:
  void Fail(int err, const char *what) {
    err_ = err;
    what_ = what;
  }

  void Flush() {
    if (out_.empty()) return;
    auto *c = new Chunk();
    c->bytes = std::move(out_);
    out_ = std::vector<uint8_t>();
    out_.reserve(job_->chunkBytes + job_->readBuf);
    job_->tsfn.BlockingCall(c, Deliver);
  }

  void RunOn(int fd) {
    int rcv = job_->recvBuf;
    if (rcv > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv)) < 0) return Fail(errno, "setsockopt(SO_RCVBUF)");
    struct timeval tv = {job_->timeoutMs / 1000, (job_->timeoutMs % 1000) * 1000};
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) return Fail(errno, "setsockopt(SO_RCVTIMEO)");
    struct sockaddr_nl local = {};
    local.nl_family = AF_NETLINK;  // nl_pid 0: the kernel picks a free port id
    if (bind(fd, reinterpret_cast<sockaddr *>(&local), sizeof(local)) < 0) return Fail(errno, "bind");
    struct sockaddr_nl kernel = {};
    kernel.nl_family = AF_NETLINK;

    const std::vector<uint8_t> &reqs = job_->requests;
    std::vector<uint8_t> buf(job_->readBuf);
    out_.reserve(job_->chunkBytes + job_->readBuf);
    size_t off = 0;
    while (off + NLMSG_HDRLEN <= reqs.size()) {
      auto *req = reinterpret_cast<const nlmsghdr *>(reqs.data() + off);
      if (req->nlmsg_len < NLMSG_HDRLEN || off + req->nlmsg_len > reqs.size()) return Fail(EINVAL, "request framing");
      const uint32_t seq = req->nlmsg_seq;
      ssize_t sent;
      do sent = sendto(fd, req, req->nlmsg_len, 0, reinterpret_cast<sockaddr *>(&kernel), sizeof(kernel));
      while (sent < 0 && errno == EINTR);
      if (sent < 0) return Fail(errno, "sendmsg");
      off += NLMSG_ALIGN(req->nlmsg_len);
      for (bool done = false; !done;) {
        struct iovec iov = {buf.data(), buf.size()};
        struct msghdr mh = {};
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        ssize_t n;
        do n = recvmsg(fd, &mh, 0);
        while (n < 0 && errno == EINTR);
        if (n < 0) return Fail(errno == EAGAIN || errno == EWOULDBLOCK ? ETIMEDOUT : errno, "recvmsg");
        if (mh.msg_flags & MSG_TRUNC) return Fail(EMSGSIZE, "recvmsg (answer larger than the read buffer)");
        // Whole datagrams are kept; the walk only finds where this request's answer ends (and whether the
        // kernel refused it: then nothing more is sent, the caller reports the refusal).
        bool refused = false;
        int left = static_cast<int>(n);
        for (const nlmsghdr *m = reinterpret_cast<const nlmsghdr *>(buf.data()); NLMSG_OK(m, left); m = NLMSG_NEXT(m, left)) {
          if (m->nlmsg_seq != seq || (m->nlmsg_type != NLMSG_DONE && m->nlmsg_type != NLMSG_ERROR)) continue;
          done = true;
          if (m->nlmsg_type == NLMSG_ERROR && m->nlmsg_len >= NLMSG_LENGTH(sizeof(int)) &&
              *reinterpret_cast<const int *>(NLMSG_DATA(m)) != 0)
            refused = true;
        }
        out_.insert(out_.end(), buf.data(), buf.data() + n);
        out_.resize(NLMSG_ALIGN(out_.size()), 0);
        if (refused) {
          answered_++;
          return;
        }
      }
      answered_++;
      // chunks end with a request's answer, so each holds whole answers
      if (out_.size() >= job_->chunkBytes) Flush();
    }
  }

  Job *job_;
  std::vector<uint8_t> out_;
  int err_ = 0;
  std::string what_;
  uint32_t answered_ = 0;
};

// dumps(protocol, requests: Buffer, { recvBufferSize, readBufferSize, timeoutMs, chunkBytes }, onChunk)
// onChunk(buffer) for each chunk (whole answers, in order), then onChunk(null) or onChunk(null, error).
Napi::Value Dumps(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsNumber() || !info[1].IsBuffer() || !info[2].IsObject() || !info[3].IsFunction())
    throw Napi::TypeError::New(env, "dumps(protocol, requests, options, onChunk)");
  auto req = info[1].As<Napi::Buffer<uint8_t>>();
  Napi::Object o = info[2].As<Napi::Object>();
  auto num = [&](const char *k, int def) {
    return o.Has(k) && o.Get(k).IsNumber() ? o.Get(k).As<Napi::Number>().Int32Value() : def;
  };
  int readBuf = num("readBufferSize", 32768);
  if (readBuf < 8192) throw Napi::RangeError::New(env, "readBufferSize must be at least 8192");
  int chunk = num("chunkBytes", 256 << 10);
  if (chunk < 1) throw Napi::RangeError::New(env, "chunkBytes must be positive");
  auto *job = new Job{info[0].As<Napi::Number>().Int32Value(),
                      std::vector<uint8_t>(req.Data(), req.Data() + req.Length()),
                      num("recvBufferSize", 1 << 20),
                      readBuf,
                      num("timeoutMs", 60000),
                      static_cast<size_t>(chunk),
                      Napi::ThreadSafeFunction::New(env, info[3].As<Napi::Function>(), "ipvs-bpf:netlinkDumps", 0, 1)};
  std::thread([job] { Runner(job).Run(); }).detach();
  return env.Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("dumps", Napi::Function::New(env, Dumps, "dumps"));
  return exports;
}

}  // namespace

NODE_API_MODULE(ipvs_netlink, Init)
