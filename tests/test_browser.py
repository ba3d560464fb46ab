"""The course in a real browser: JupyterLab and the feedback pages, driven by headless Chromium.

One JupyterLab serves a graded copy of the course (tests/classroom.py) on 127.0.0.1 with a
random port and a token. A student opens a released notebook, fills in one answer, runs it
and validates it with nbgrader's Validate button; the instructor notebook draws its plotly
surface; the formgrader lists the submissions and shows the grader a rubric; a feedback
page draws its formulas and its plotly figure with the network switched off.
Screenshots go to screenshots/ (ignored by git) for a person to look at.
"""

from __future__ import annotations

import re
import shutil
import time

import pytest

import browser
import classroom
from classroom import ASSIGNMENT, CRITERIA, MODEL_ANSWER

from course import config
from utils import variant

try:
    from selenium.webdriver.common.by import By
except ImportError:  # browser.find_browser() says how to get it
    By = None

pytestmark = pytest.mark.xdist_group("browser")
ROOT = browser.ROOT
# Grading takes time: one honest submission for the formgrader, and the leaker, whose reading
# of the hidden tests is flagged, for the evidence on top of its notebook.
BROWSER_STUDENTS = ("good", "leaker")
ANSWER_1_1 = "x = torch.tensor(point, requires_grad=True)\nf = 2 / ((5 - x) ** 2 + 2**2)\nf.backward()\ndfdx = x.grad"
STUDENT = "ada"  # the id the student typed in the id cell (utils/variant.py: 1.1's point comes from it)


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    browser.find_browser()  # fails first, with how to get the browser, where there is none
    root = tmp_path_factory.mktemp("classroom")
    classroom.build(root, students=BROWSER_STUDENTS)
    shutil.copytree(ROOT / "release" / "autodiff", root / "student" / "autodiff")
    notebook = root / "student" / "autodiff" / "autodiff.ipynb"
    notebook.write_text(notebook.read_text().replace('STUDENT_ID = \\"\\"', f'STUDENT_ID = \\"{STUDENT}\\"', 1))
    shutil.copytree(ROOT / "source" / "optimizers", root / "instructor" / "optimizers")
    browser.SCREENSHOTS.mkdir(exist_ok=True)
    lab = browser.Lab(root, tmp_path_factory.mktemp("logs") / "lab.log")
    driver = browser.start_browser(tmp_path_factory.mktemp("chromium-profile"))
    driver.set_page_load_timeout(60)
    # Log in at the server's root, as opening JupyterLab does: a login cookie first set by a
    # formgrader page has no path (nbgrader's handlers strip the base url's "/"), so it never
    # reaches the formgrader's API and its tables stay at "Loading" unless a test ran before.
    driver.get(lab.url("api/status"))
    try:
        yield root, lab, driver
    finally:
        driver.quit()
        lab.stop()


def wait_for(condition, timeout: float, what: str, driver=None, shot: str | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except Exception:  # the page is still changing under us
            value = None
        if value:
            return value
        time.sleep(0.5)
    page = ""
    if driver is not None and shot:
        driver.save_screenshot(str(browser.SCREENSHOTS / shot))
        try:  # what the page showed instead, for a CI log without the screenshot
            page = f"; the page ({driver.current_url.split('?')[0]}) showed:\n" + driver.find_element(
                By.TAG_NAME, "body").text[:1500]
        except Exception:
            page = "; the page could not be read"
    raise AssertionError(f"timed out after {timeout} s waiting for {what}{page}")


def shoot(driver, name: str) -> None:
    driver.save_screenshot(str(browser.SCREENSHOTS / name))


def open_notebook(driver, lab, path: str):
    from selenium.webdriver.common.by import By

    driver.get(lab.url(f"lab/tree/{path}"))
    wait_for(lambda: "Idle" in driver.find_element(By.CSS_SELECTOR, ".jp-StatusBar-Item, #jp-main-statusbar").text
             and len(driver.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell")) > 5,
             90, f"{path} to open with an idle kernel", driver, "timeout-open.png")
    for button in driver.find_elements(By.CSS_SELECTOR, ".jp-toast-button, .jp-Notification-Toast button"):
        if button.text.strip() == "No":  # JupyterLab asks whether to fetch its news: it must not
            button.click()


def menu(driver, top: str, item: str) -> None:
    from selenium.webdriver.common.by import By

    next(e for e in driver.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-itemLabel") if e.text == top).click()
    wait_for(lambda: [e for e in driver.find_elements(By.CSS_SELECTOR, ".lm-Menu-itemLabel") if e.text == item],
             10, f"menu item {item}")[0].click()


def test_a_student_fills_in_an_answer_runs_and_validates(session):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    root, lab, driver = session
    open_notebook(driver, lab, "student/autodiff/autodiff.ipynb")
    cells = driver.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell")
    todo = next(c for c in cells if "jp-CodeCell" in c.get_attribute("class") and "raise NotImplementedError()" in c.text)
    editor = todo.find_element(By.CSS_SELECTOR, ".cm-content")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", editor)
    editor.click()
    editor.send_keys(Keys.CONTROL, "a")
    for line in ANSWER_1_1.split("\n"):
        editor.send_keys(line, Keys.ENTER)
    editor.send_keys('print(f"dfdx = {float(dfdx):.5f}")', Keys.ESCAPE)
    menu(driver, "Run", "Run All Cells")
    # Run All stops at the first cell that still raises NotImplementedError (1.2): by then
    # the filled-in cell printed its value and its test cell ran without an error.
    point = variant.compute("autodiff", STUDENT, config.settings().variants.salt).numbers.point
    shown = f"dfdx = {4 * (5 - point) / ((5 - point) ** 2 + 4) ** 2:.5f}"
    wait_for(lambda: shown in todo.text, 90, "the answer cell to run", driver, "timeout-run.png")
    test_cell = driver.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell")[cells.index(todo) + 1]
    assert "# Test 1.1" in test_cell.text
    wait_for(lambda: "[" in test_cell.find_element(By.CSS_SELECTOR, ".jp-InputPrompt").text
             and "*" not in test_cell.find_element(By.CSS_SELECTOR, ".jp-InputPrompt").text, 60, "test 1.1 to run")
    assert "Error" not in test_cell.text, test_cell.text
    driver.find_element(By.CSS_SELECTOR, "body").send_keys(Keys.CONTROL, "s")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", todo)
    time.sleep(1)
    shoot(driver, "a1-student-answer-run.png")
    next(b for b in driver.find_elements(By.CSS_SELECTOR, ".jp-Toolbar button, .jp-Toolbar jp-button")
         if b.text.strip() == "Validate").click()
    dialog = wait_for(lambda: [d for d in driver.find_elements(By.CSS_SELECTOR, ".jp-Dialog")
                               if "Test 1.2" in d.text or "alidat" in d.text and "ing" not in d.text.split()[0]],
                      180, "nbgrader's validation result", driver, "timeout-validate.png")[0]
    wait_for(lambda: "Test 1.2" in dialog.text or "Success" in dialog.text, 180, "the validation report",
             driver, "timeout-validate.png")
    shoot(driver, "a2-student-validate.png")
    report = dialog.text
    # The other answers are still blank, so validation lists their test cells, but not 1.1's.
    assert "# Test 1.2" in report and "NameError" in report, report[:2000]
    assert not re.search(r"# Test 1\.1\b", report) and "dfdx" not in report, report[:2000]
    dialog.find_elements(By.CSS_SELECTOR, "button")[-1].click()


def test_the_instructor_notebook_draws_the_plotly_surface(session):
    from selenium.webdriver.common.by import By

    root, lab, driver = session
    open_notebook(driver, lab, "instructor/optimizers/optimizers.ipynb")
    menu(driver, "Run", "Run All Cells")
    plot = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, ".js-plotly-plot"), 150,
                    "the plotly surface", driver, "timeout-plotly.png")[0]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", plot)
    time.sleep(2)
    traces = driver.execute_script(
        "return arguments[0]._fullData.map(t => [t.type, t.z ? t.z.length : 0]);", plot)
    assert traces and traces[0][0] == "surface" and traces[0][1] > 10, traces
    assert plot.size["height"] > 200 and plot.size["width"] > 200
    assert "WebGL is not supported" not in plot.text
    shoot(driver, "b-instructor-plotly-surface.png")
    assert _colours(plot.screenshot_as_png) > 50, "the plotly figure is blank"


def _colours(png: bytes) -> int:
    import io

    from PIL import Image

    return len(set(Image.open(io.BytesIO(png)).convert("RGB").getcolors(1 << 24) or []))


def test_the_formgrader_lists_the_submissions_and_shows_the_rubric(session):
    from selenium.webdriver.common.by import By

    root, lab, driver = session
    driver.get(lab.url(f"formgrader/manage_submissions/{ASSIGNMENT}"))
    wait_for(lambda: all(s in driver.find_element(By.TAG_NAME, "body").text for s in BROWSER_STUDENTS),
             60, "the submissions in the formgrader", driver, "timeout-formgrader.png")
    shoot(driver, "c1-formgrader-submissions.png")
    driver.get(lab.url(f"formgrader/gradebook/{ASSIGNMENT}/{ASSIGNMENT}"))
    link = wait_for(lambda: [a for a in driver.find_elements(By.CSS_SELECTOR, "a") if "Submission #" in a.text],
                    60, "the submissions of the notebook", driver, "timeout-formgrader.png")[0]
    driver.get(link.get_attribute("href"))
    wait_for(lambda: CRITERIA in driver.find_element(By.TAG_NAME, "body").text, 60,
             "the rubric in the grading view", driver, "timeout-rubric.png")
    assert MODEL_ANSWER in driver.find_element(By.TAG_NAME, "body").text
    rubric = next(e for e in driver.find_elements(By.CSS_SELECTOR, ".text_cell_render, .rendered_html")
                  if CRITERIA in e.text)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", rubric)
    shoot(driver, "c2-formgrader-rubric.png")


def test_the_formgrader_shows_a_flagged_submission_s_evidence_on_top_of_its_notebook(session):
    from selenium.webdriver.common.by import By

    root, lab, driver = session
    driver.get(lab.url(f"formgrader/gradebook/{ASSIGNMENT}/{ASSIGNMENT}"))
    links = wait_for(lambda: [a.get_attribute("href") for a in driver.find_elements(By.CSS_SELECTOR, "a")
                              if "Submission #" in a.text], 60, "the submissions of the notebook", driver,
                     "timeout-formgrader.png")
    found = []
    for href in links:
        driver.get(href)
        wait_for(lambda: CRITERIA in driver.find_element(By.TAG_NAME, "body").text, 60, "a grading view", driver,
                 "timeout-evidence.png")
        body = driver.find_element(By.TAG_NAME, "body").text
        if "Review (for graders; never shown to students)" in body:
            found.append(body)
            shoot(driver, "c3-formgrader-evidence.png")
    assert len(found) == 1, f"{len(found)} of {len(links)} grading views show review evidence"
    assert "Held:" in found[0] and "touches the grader's hidden tests" in found[0]


def test_a_feedback_page_draws_formulas_and_figures_offline(session):
    from selenium.webdriver.common.by import By

    root, lab, driver = session
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
        "offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    try:
        page = root / "feedback" / "good" / ASSIGNMENT / f"{ASSIGNMENT}.html"
        driver.get(page.as_uri())
        plot = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .main-svg"), 30,
                        "the plotly figure", driver, "timeout-feedback.png")[0]
        formulas = driver.execute_script(
            "return [...document.querySelectorAll('math')].map(m => m.getBoundingClientRect())"
            ".map(r => [r.width, r.height]);")
        assert len(formulas) >= 2 and all(w > 10 and h > 10 for w, h in formulas), formulas
        # MathML drawn natively: the fraction is a fraction, not the text \frac
        assert "\\frac" not in driver.find_element(By.TAG_NAME, "body").text
        points = driver.execute_script(
            "return document.querySelectorAll('.js-plotly-plot .scatterlayer .trace path.js-line').length;")
        assert points >= 1, "the plotly line was not drawn"
        remote = driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)"
            ".filter(n => !n.startsWith('file:') && !n.startsWith('data:'));")
        assert remote == [], remote
        shoot(driver, "d1-feedback-top.png")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", plot)
        shoot(driver, "d2-feedback-plotly.png")
    finally:
        driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
            "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})


@pytest.fixture(scope="module")
def report_browser(tmp_path_factory):
    """A browser of its own for the similarity page: it needs no JupyterLab and no graded course."""
    browser.find_browser()
    browser.SCREENSHOTS.mkdir(exist_ok=True)
    driver = browser.start_browser(tmp_path_factory.mktemp("chromium-report-profile"))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def test_the_similarity_report_shows_ranked_pairs_and_a_highlighted_pair_offline(report_browser, tmp_path):
    import similarity_corpus

    from course.commands import similarity

    cls = similarity_corpus.build("autodiff", students=12, copies=2, blanks=2, seed=2)
    cls.write(tmp_path / "submitted", "autodiff")
    page = similarity.run("autodiff", submitted=tmp_path / "submitted", out=tmp_path / "reports").html
    driver = report_browser
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
        "offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    try:
        driver.get(page.as_uri())
        rows = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#pairs tr"), 20, "the table of pairs",
                        driver, "timeout-similarity.png")
        assert len(rows) == 1 + 12 * 11 // 2  # the header and every pair
        first = rows[1].find_elements(By.TAG_NAME, "td")
        top = {first[1].text, first[2].text.replace(" ref", "")}
        assert top in [{c, o} for c, (o, _) in cls.copies.items()], f"the top pair {top} is not a planted copy"
        shoot(driver, "e1-similarity-table.png")
        rows[1].find_element(By.TAG_NAME, "a").click()
        section = driver.find_element(By.ID, "pair-1")
        marks = section.find_elements(By.CSS_SELECTOR, "mark.rare")
        assert marks, "the top pair shows no region that only these two share"
        box = driver.execute_script("const r = arguments[0].getBoundingClientRect(); return [r.width, r.height];",
                                    marks[0])
        colour = driver.execute_script("return getComputedStyle(arguments[0]).backgroundColor;", marks[0])
        assert box[0] > 5 and box[1] > 5 and colour not in ("rgba(0, 0, 0, 0)", "transparent"), (box, colour)
        heads = [e.text for e in section.find_elements(By.CSS_SELECTOR, ".grid .head")][1:]
        assert set(heads) == top, "the two columns are the two students of the pair"
        remote = driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)"
            ".filter(n => !n.startsWith('file:') && !n.startsWith('data:'));")
        assert remote == [], remote
        driver.execute_script("arguments[0].scrollIntoView({block: 'start'});", section)
        shoot(driver, "e2-similarity-pair.png")
    finally:
        driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
            "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
