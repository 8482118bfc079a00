# bench/inspect.sh: mitmproxy connects every upstream to 127.0.0.1 on the CONNECT port
# (tlsgate resolves the bench names from TLSGATE_TEST_HOSTS; mitmproxy has no such option).
def server_connect(data):
    data.server.address = ("127.0.0.1", data.server.address[1])
