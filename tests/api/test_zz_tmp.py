import time
def test_time(make_server) -> None:
    for w in (False, True):
        server = make_server(worker=w)
        h = server.http()
        for i in range(4):
            t = time.perf_counter(); h.get("/health"); print(w, "health", time.perf_counter() - t)
        for i in range(3):
            t = time.perf_counter(); h.get("/v1/files"); print(w, "list", time.perf_counter() - t)
