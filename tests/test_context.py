"""The request-scoped helpers headers() and cookies(): reading, setting,
deleting, the merge into the returned response and into redirect(), and
isolation between concurrent requests (design.md, "The public API")."""
from __future__ import annotations

import threading

import pytest

from helpers import call, client, cookie_pairs, import_from_app, make_app_dir, make_environ
from minirouter import App

FILES = {
    "_lib/state.py": """
        import threading
        barrier = threading.Barrier(2, timeout=10)
        """,
    "read/route.py": """
        from minirouter import cookies

        def GET():
            jar = cookies()
            return {
                'theme': jar.get('theme'),
                'missing': jar.get('missing'),
                'has': jar.has('theme'),
                'in': 'theme' in jar,
                'has_missing': jar.has('missing'),
                'names': sorted(jar),
            }
        """,
    "setget/route.py": """
        from minirouter import cookies

        def GET():
            cookies().set('fresh', 'v1')
            return {'fresh': cookies().get('fresh'), 'has': cookies().has('fresh')}
        """,
    "logout/route.py": """
        from minirouter import cookies

        def POST():
            cookies().delete('__Host-sid')
            cookies().delete('embed', secure=True, partitioned=True)
            return {'sid': cookies().get('__Host-sid'), 'embed': cookies().get('embed')}
        """,
    "setdelete/route.py": """
        from minirouter import cookies

        def GET():
            cookies().set('tmp', 'v')
            cookies().delete('tmp')
            cookies().delete('theme')
            return {'tmp': cookies().get('tmp'), 'theme': cookies().get('theme'),
                    'has_theme': cookies().has('theme'), 'in_theme': 'theme' in cookies()}
        """,
    "merge/route.py": """
        from minirouter import Response, cookies

        def GET():
            cookies().set('a', '1', http_only=True)
            return Response('plain')

        def POST():
            cookies().set('a', '1')
            return {'shorthand': True}

        def PUT():
            cookies().set('a', 'from-cookies')
            cookies().set('b', 'kept')
            resp = Response('x')
            resp.cookies.set('a', 'from-response')
            return resp

        def PATCH():
            cookies().set('a', '1')
            return Response.redirect('/there')

        def DELETE():
            cookies().set('a', 'from-cookies')
            return Response('x', headers={'Set-Cookie': 'a=raw-header; Path=/'})
        """,
    "redir/route.py": """
        from minirouter import cookies, redirect, permanent_redirect

        def GET():
            cookies().set('flash', 'saved')
            redirect('/comments')

        def POST():
            cookies().set('flash', 'moved')
            permanent_redirect('/new')
        """,
    "asyncset/route.py": """
        import asyncio
        from minirouter import cookies

        async def GET():
            cookies().set('a', 'async')
            await asyncio.sleep(0)
            return {'a': cookies().get('a')}
        """,
    "nothing/route.py": """
        from minirouter import cookies

        def GET():
            return {'a': cookies().get('a'), 'fresh': cookies().get('fresh')}
        """,
    "hdrs/route.py": """
        from minirouter import headers

        def GET(request):
            h = headers()
            out = {'ua': h.get('user-agent'), 'auth': h.get('Authorization'),
                   'same': h.get('x-a') == request.headers.get('x-a')}
            try:
                h['x-new'] = '1'
            except Exception as exc:
                out['error'] = str(exc)
            out['after'] = headers().get('x-new')
            return out
        """,
    "threads/[who]/route.py": """
        from minirouter import cookies
        from PKG._lib.state import barrier

        def GET(request, context):
            who = context.params['who']
            cookies().set('who', who)
            barrier.wait()
            seen = cookies().get('who')
            barrier.wait()
            return {'who': who, 'seen': seen, 'incoming': cookies().get('incoming')}
        """,
    "athreads/[who]/route.py": """
        import asyncio
        from minirouter import cookies
        from PKG._lib.state import barrier

        async def GET(request, context):
            who = context.params['who']
            cookies().set('who', who)
            await asyncio.sleep(0)
            barrier.wait()
            seen = cookies().get('who')
            barrier.wait()
            return {'who': who, 'seen': seen, 'incoming': cookies().get('incoming')}
        """,
}


@pytest.fixture
def ctx(tmp_path):
    d = make_app_dir(tmp_path, FILES)
    app = App(str(d))
    return app, d


def test_cookies_reads_request_cookies(ctx):
    app, _ = ctx
    r = client(app).get("/read", cookies={"theme": "dark", "other": "1"})
    assert r.json() == {"theme": "dark", "missing": None, "has": True, "in": True, "has_missing": False,
                        "names": ["other", "theme"]}


def test_cookies_percent_decoded(ctx):
    app, _ = ctx
    r = call(app, make_environ("GET", "/read", headers={"Cookie": "theme=caf%C3%A9"}))
    assert r.json()["theme"] == "café"


def test_set_is_visible_later_in_same_request(ctx):
    app, _ = ctx
    r = client(app).get("/setget")
    assert r.json() == {"fresh": "v1", "has": True}
    assert cookie_pairs(r.headers.get_all("set-cookie")) == {"fresh": "v1"}


def test_delete_hides_cookie_and_sends_expiry(ctx):
    app, _ = ctx
    r = client(app).get("/setdelete", cookies={"theme": "dark"})
    assert r.json() == {"tmp": None, "theme": None, "has_theme": False, "in_theme": False}
    lines = r.headers.get_all("set-cookie")
    theme = [line for line in lines if line.startswith("theme=")]
    assert len(theme) == 1
    assert theme[0].startswith("theme=;")
    assert "Expires=Thu, 01 Jan 1970 00:00:00 GMT" in theme[0]


def test_delete_takes_the_attributes_the_cookie_was_set_with(ctx):
    app, _ = ctx
    r = client(app).post("/logout", cookies={"__Host-sid": "s1", "embed": "e1"})
    assert r.json() == {"sid": None, "embed": None}
    lines = sorted(r.headers.get_all("set-cookie"))
    assert lines == [
        "__Host-sid=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Secure",
        "embed=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Secure; Partitioned",
    ]


def test_merge_into_returned_response(ctx):
    app, _ = ctx
    r = client(app).get("/merge")
    assert r.text == "plain"
    assert r.headers.get_all("set-cookie") == ["a=1; Path=/; HttpOnly"]


def test_merge_into_dict_shorthand(ctx):
    app, _ = ctx
    r = client(app).post("/merge")
    assert r.json() == {"shorthand": True}
    assert cookie_pairs(r.headers.get_all("set-cookie")) == {"a": "1"}


def test_response_own_cookie_wins(ctx):
    app, _ = ctx
    r = client(app).put("/merge")
    lines = r.headers.get_all("set-cookie")
    a_lines = [line for line in lines if line.startswith("a=")]
    assert a_lines == ["a=from-response; Path=/"]
    assert cookie_pairs(lines) == {"a": "from-response", "b": "kept"}


def test_response_own_raw_set_cookie_header_wins(ctx):
    app, _ = ctx
    r = client(app).delete("/merge")
    assert r.headers.get_all("set-cookie") == ["a=raw-header; Path=/"]


def test_merge_into_returned_redirect(ctx):
    app, _ = ctx
    r = client(app).patch("/merge")
    assert r.status == 307
    assert r.headers.get("location") == "/there"
    assert cookie_pairs(r.headers.get_all("set-cookie")) == {"a": "1"}


def test_merge_into_redirect_helper(ctx):
    app, _ = ctx
    c = client(app)
    r = c.get("/redir")
    assert r.status == 307
    assert r.headers.get("location") == "/comments"
    assert r.cookies == {"flash": "saved"}
    r = c.post("/redir")
    assert r.status == 308
    assert r.cookies == {"flash": "moved"}


def test_cookies_in_async_handler(ctx):
    app, _ = ctx
    r = client(app).get("/asyncset")
    assert r.json() == {"a": "async"}
    assert r.cookies == {"a": "async"}


def test_nothing_leaks_into_the_next_request(ctx):
    app, _ = ctx
    c = client(app)
    c.get("/asyncset")
    c.get("/setget")
    r = c.get("/nothing")
    assert r.json() == {"a": None, "fresh": None}
    assert r.headers.get_all("set-cookie") == []


def test_headers_helper_read_only(ctx):
    app, _ = ctx
    r = client(app).get("/hdrs", headers={"User-Agent": "ua/2", "Authorization": "Bearer t", "X-A": "1"})
    data = r.json()
    assert data["ua"] == "ua/2"
    assert data["auth"] == "Bearer t"
    assert data["same"] is True
    assert data.get("error"), "headers() must refuse changes with an error"
    assert data["after"] is None


def test_cookies_set_validates(ctx, tmp_path):
    d = make_app_dir(tmp_path, {
        "bad/route.py": """
            from minirouter import cookies

            def GET():
                errors = []
                for args in (('a b', 'v'), ('n', 'a\\r\\nb'), ('n', 'a\\x00b')):
                    try:
                        cookies().set(*args)
                    except ValueError:
                        errors.append(args[0])
                return {'errors': len(errors)}
            """,
    })
    r = client(App(str(d))).get("/bad")
    assert r.json() == {"errors": 3}
    assert r.headers.get_all("set-cookie") == []


@pytest.mark.parametrize("route", ["threads", "athreads"])
def test_contextvars_isolation_under_threads(ctx, route):
    app, d = ctx
    results = {}
    errors = []

    def worker(who):
        try:
            c = client(app)
            r = c.get(f"/{route}/{who}", cookies={"incoming": f"in-{who}"})
            results[who] = (r.status, r.json(), r.headers.get_all("set-cookie"))
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(who,)) for who in ("alice", "bob")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors
    for who in ("alice", "bob"):
        status, data, lines = results[who]
        assert status == 200
        assert data == {"who": who, "seen": who, "incoming": f"in-{who}"}
        assert cookie_pairs(lines) == {"who": who}
    state = import_from_app(d, "_lib.state")
    assert not state.barrier.broken


# Next.js merges pending cookies into what the handler returns and into
# redirect(); a raised error (not_found(), an HTTPError, a crash) is sent
# without them, so half-done state never reaches the browser.
ERROR_FILES = {
    "fails/[how]/route.py": """
        import sys
        from minirouter import HTTPError, Response, cookies, not_found, redirect

        def GET(request, context):
            cookies().set("half", "done")
            how = context.params["how"]
            if how == "404":
                not_found()
            if how == "403":
                raise HTTPError(403, "no")
            if how == "exit":
                sys.exit(3)
            if how == "redirect":
                redirect("/elsewhere")
            # Not an answer: a 500 like a crash, so no cookies either.
            if how == "none":
                return None
            if how == "int":
                return 5
            if how == "status":
                return Response("x", status=600)
            if how == "next":
                return Response.next()
            raise RuntimeError("boom")
        """,
}


@pytest.mark.parametrize(
    "how, status",
    [("404", 404), ("403", 403), ("crash", 500), ("exit", 500), ("none", 500), ("int", 500), ("status", 500),
     ("next", 500)],
)
def test_cookies_are_not_merged_into_a_raised_error(tmp_path, how, status):
    app = App(str(make_app_dir(tmp_path, ERROR_FILES)))
    response = client(app).get(f"/fails/{how}")
    assert response.status == status
    assert response.headers.get_all("set-cookie") == []


def test_cookies_are_merged_into_a_raised_redirect(tmp_path):
    app = App(str(make_app_dir(tmp_path, ERROR_FILES)))
    response = client(app).get("/fails/redirect")
    assert response.status == 307 and response.cookies == {"half": "done"}


def test_sys_exit_in_a_handler_is_a_logged_500_not_a_stop(tmp_path, caplog):
    app = App(str(make_app_dir(tmp_path, ERROR_FILES)))
    response = client(app).get("/fails/exit")
    assert response.status == 500 and response.json() == {"error": "internal server error"}
    assert "GET handler raised" in caplog.text and "SystemExit" in caplog.text


def test_await_cookies_and_headers_as_nextjs_15_writes_them(tmp_path):
    from helpers import client, make_app

    app = make_app(tmp_path, {"r/route.py": (
        "from minirouter import cookies, headers\n"
        "async def GET(request):\n"
        "    jar = await cookies()\n"
        "    jar.set('seen', '1')\n"
        "    request_headers = await headers()\n"
        "    return {'theme': jar.get('theme'), 'seen': jar.get('seen'), 'ua': request_headers.get('user-agent'),\n"
        "            'same': jar is cookies()}\n"
    )})
    response = client(app).get("/r", headers={"User-Agent": "probe"}, cookies={"theme": "dark"})
    assert response.json() == {"theme": "dark", "seen": "1", "ua": "probe", "same": True}
    assert "seen=1; Path=/" in response.headers.get_all("set-cookie")


TASK_GROUP_ROUTES = {
    "missing/route.py": (
        "import asyncio\nfrom minirouter import cookies, not_found\n"
        "async def GET():\n"
        "    async def child():\n        not_found('no such thing')\n"
        "    async with asyncio.TaskGroup() as group:\n        group.create_task(child())\n"
    ),
    "moved/route.py": (
        "import asyncio\nfrom minirouter import cookies, redirect\n"
        "async def GET():\n"
        "    cookies().set('seen', '1')\n"
        "    async def child():\n        redirect('/elsewhere')\n"
        "    async with asyncio.TaskGroup() as group:\n        group.create_task(child())\n"
    ),
    "two/route.py": (
        "import asyncio\nfrom minirouter import not_found\n"
        "async def GET():\n"
        "    async def child():\n        not_found()\n"
        "    async def other():\n        raise ValueError('and this')\n"
        "    async with asyncio.TaskGroup() as group:\n"
        "        group.create_task(child())\n        group.create_task(other())\n"
    ),
    "middleware.py": (
        "import asyncio\nfrom minirouter import HTTPError\n"
        "config = {'matcher': ['/guarded']}\n"
        "async def middleware(request):\n"
        "    async def check():\n        raise HTTPError(401, 'sign in first')\n"
        "    async with asyncio.TaskGroup() as group:\n        group.create_task(check())\n"
    ),
}


@pytest.mark.skipif(not hasattr(__import__("asyncio"), "TaskGroup"), reason="asyncio.TaskGroup is Python 3.11+")
def test_an_http_error_raised_in_a_task_group_child_is_that_answer(tmp_path):
    # The TaskGroup wraps it in an ExceptionGroup, which was a 500.
    web = client(App(str(make_app_dir(tmp_path, TASK_GROUP_ROUTES))))
    missing = web.get("/missing")
    assert (missing.status, missing.json()) == (404, {"error": "no such thing"})
    moved = web.get("/moved")
    assert (moved.status, moved.headers["location"]) == (307, "/elsewhere")
    assert moved.headers.get_all("set-cookie") == ["seen=1; Path=/"]  # a redirect keeps its cookies
    guarded = web.get("/guarded")
    assert (guarded.status, guarded.json()) == (401, {"error": "sign in first"})
    assert web.get("/two").status == 500  # with another error beside it, it is a failure


# --- each request in a context of its own ------------------------------------------------

OWN_CONTEXT_FILES = {
    "_lib/auth.py": """
        import contextvars
        user = contextvars.ContextVar("user", default=None)
        """,
    "middleware.py": """
        from myapp._lib.auth import user

        config = {"matcher": ["/login"]}

        def middleware(request):
            user.set(request.search_params.get("as"))
        """,
    "login/route.py": """
        from myapp._lib.auth import user

        def GET():
            return {"user": user.get()}
        """,
    "me/route.py": """
        from myapp._lib.auth import user

        def GET():
            seen = user.get()
            user.set("set by /me")  # a sync handler's own setting, too, ends with its request
            return {"user": seen}
        """,
    "stream/route.py": """
        from minirouter import Response
        from myapp._lib.auth import user

        def pieces():
            yield "handler set %s; " % user.get()
            user.set("set in the body")
            yield "body sees %s" % user.get()

        def GET():
            user.set("bob")
            return Response(pieces())
        """,
}


def test_a_context_variable_set_for_one_request_is_unset_for_the_next(tmp_path) -> None:
    # A middleware that finds the user on some paths only, and a route on another
    # path that reads it: on a server thread, the next request must not see the
    # previous client's user (Next.js gives each request its own AsyncLocalStorage).
    client_ = client(App(str(make_app_dir(tmp_path, OWN_CONTEXT_FILES, name="myapp"))))
    assert client_.get("/login?as=alice").json() == {"user": "alice"}  # the same request sees it
    assert client_.get("/me").json() == {"user": None}
    assert client_.get("/me").json() == {"user": None}


def test_a_streamed_body_sees_its_handlers_context_and_leaves_none_behind(tmp_path) -> None:
    # The server reads a body after the app has returned, out of the request's context.
    app = App(str(make_app_dir(tmp_path, OWN_CONTEXT_FILES, name="myapp")))
    environ = make_environ("GET", "/stream")
    body = app(environ, lambda status, headers, exc_info=None: None)
    pieces = list(body)  # read here, where the handler's context is not
    body.close()
    assert b"".join(pieces) == b"handler set bob; body sees set in the body"
    assert client(app).get("/me").json() == {"user": None}


def test_a_cookie_read_from_cookies_with_brackets_that_is_not_there_is_a_400(tmp_path) -> None:
    app = App(str(make_app_dir(tmp_path, {"r/route.py": """
        from minirouter import cookies

        def GET(request):
            jar = cookies()
            jar.delete("gone")
            if request.search_params.get("which") == "deleted":
                return {"value": jar["gone"]}
            return {"value": jar.get("gone"), "in": "gone" in jar, "sent": jar["kept"],
                    "missing": jar.get("missing", "default")}
        """})))
    sent = {"gone": "1", "kept": "2"}
    assert client(app).get("/r", cookies=sent).json() == {"value": None, "in": False, "sent": "2",
                                                          "missing": "default"}
    # The handler deleted it itself: its mistake, a 500, not the client's 400.
    deleted = client(app).get("/r?which=deleted", cookies=sent)
    assert deleted.status == 500 and deleted.json() == {"error": "internal server error"}
    assert client(app).get("/r").json() == {"error": "missing cookie 'kept'"}


def test_a_streamed_body_may_reset_what_its_handler_set(tmp_path) -> None:
    # The token of var.set() belongs to one Context: the body runs in the request's own.
    app = App(str(make_app_dir(tmp_path, {**OWN_CONTEXT_FILES, "tokens/route.py": """
        from minirouter import Response
        from myapp._lib.auth import user

        def GET():
            token = user.set("alice")

            def body():
                try:
                    yield "hi %s" % user.get()
                finally:
                    user.reset(token)
            return Response(body())
        """}, name="myapp")))
    answer = client(app).get("/tokens")
    assert answer.status == 200 and answer.text == "hi alice"


def test_what_a_body_sets_when_the_server_closes_it_early_stays_in_its_request(tmp_path) -> None:
    # A client gone after the first piece: the generator's finally runs at close(),
    # on the server's thread, still in its request's context.
    app = App(str(make_app_dir(tmp_path, {**OWN_CONTEXT_FILES, "early/route.py": """
        from minirouter import Response
        from myapp._lib.auth import user

        def GET():
            def body():
                try:
                    yield "first"
                    yield "second"
                finally:
                    user.set("set in finally")
            return Response(body())
        """}, name="myapp")))
    from importlib import import_module

    body = app(make_environ("GET", "/early"), lambda status, headers, exc_info=None: None)
    assert next(iter(body)) == b"first"
    body.close()
    assert import_module("myapp._lib.auth").user.get() is None  # this thread, out of the request
    assert client(app).get("/me").json() == {"user": None}


def test_a_force_static_route_never_sees_what_the_middleware_set_in_the_context(tmp_path, caplog) -> None:
    # Its one answer is served to every client: the first client's user, set by the
    # middleware in the request's context, must not be kept in it.
    files = {
        "_lib/auth.py": OWN_CONTEXT_FILES["_lib/auth.py"],
        "middleware.py": """
            from myapp._lib.auth import user

            def middleware(request):
                user.set(request.headers.get("authorization"))
            """,
        "page/route.py": """
            from minirouter import Response
            from myapp._lib.auth import user

            dynamic = "force-static"

            def GET():
                return {"user": user.get()}
            """,
        "stream/route.py": """
            from minirouter import Response
            from myapp._lib.auth import user

            dynamic = "force-static"

            def GET():
                def pieces():
                    yield "first "
                    yield "then %s" % user.get()
                return Response(pieces())
            """,
        "me/route.py": OWN_CONTEXT_FILES["login/route.py"],
    }
    web = client(App(str(make_app_dir(tmp_path, files, name="myapp"))))
    assert web.get("/me", headers={"Authorization": "alice"}).json() == {"user": "alice"}  # a dynamic route sees it
    assert web.get("/page", headers={"Authorization": "alice"}).json() == {"user": None}
    assert web.get("/page").json() == {"user": None}
    assert web.get("/stream", headers={"Authorization": "alice"}).text == "first then None"


def test_a_force_static_streamed_body_that_reads_the_query_by_name_is_a_500_as_its_handler_would_be(
    tmp_path, caplog
) -> None:
    web = client(App(str(make_app_dir(tmp_path, {"fs/route.py": """
        from minirouter import Response

        dynamic = "force-static"

        def GET(request):
            def pieces():
                yield request.search_params["q"]
            return Response(pieces())

        def POST(request):  # only GET is served the stripped request: a POST's missing value is the client's
            return {"q": request.search_params["q"]}

        def PUT(request):
            def pieces():
                yield request.search_params["q"]
            return Response(pieces())
        """}))))
    response = web.get("/fs?q=1")  # the client sent it: a 400 "missing" would blame it
    assert response.status == 500 and response.json() == {"error": "internal server error"}
    assert "force-static: it sees no query" in caplog.text
    assert web.post("/fs?q=1").json() == {"q": "1"}
    for method in ("POST", "PUT"):
        missing = web.request(method, "/fs")
        assert missing.status == 400 and missing.json() == {"error": "missing query parameter 'q'"}


def test_setting_a_cookie_replaces_only_the_one_of_that_name_among_many(tmp_path) -> None:
    from minirouter import CookieJar

    jar = CookieJar({})
    for number in range(300):
        jar.set(f"c{number}", "first")
    jar.set("c1", "again")  # its name is in c10-c19 and c100-c199 too
    jar.set("c", "new")
    lines = [line.split(";")[0] for line in jar._pending.values()]
    assert len(lines) == 301 and lines.count("c1=again") == 1 and "c1=first" not in lines
    assert "c10=first" in lines and "c100=first" in lines and lines[-1] == "c=new"
    assert jar.get("c1") == "again" and jar.get("c10") == "first"
