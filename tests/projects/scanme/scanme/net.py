import socket
import sqlite3
import subprocess as sp


def fetch(host, port):
    sock = socket.create_connection((host, port))
    try:
        sock.sendall(b"GET")
        return sock.recv(1024)
    except (ConnectionResetError, TimeoutError):
        return b""
    finally:
        sock.close()


def serve(srv: socket.socket):
    conn, _addr = srv.accept()
    conn.send(b"hi")


def record(db_path, rows):
    with sqlite3.connect(db_path) as conn:
        conn.executemany("INSERT INTO t VALUES (?)", rows)
        cur = conn.cursor()
        cur.execute("SELECT 1")
        conn.commit()


def run(cmd):
    try:
        return sp.run(cmd, check=True)
    except sp.CalledProcessError:
        return None
